#!/usr/bin/env bash
# Install what building, testing and running Sluice needs. Idempotent, and quick when all is present:
# apt packages (only if missing), a Rust toolchain with clippy and rustfmt, cargo-pgrx at the version
# pinned below, and `cargo pgrx init` for the system Postgres 15.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

PGRX_VERSION=0.18.0
# postgresql-15-postgis-3: postgrest-js's own Supabase project (sidecar/tests/cli.rs) creates postgis.
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-15-postgis-3 libclang-dev clang sudo pkg-config make curl ca-certificates locales)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# A sidecar test runs Postgres with German messages (lc_messages) to prove that no error is recognised
# by its translatable text; postgresql-15 ships the translations, the locale itself is generated here.
if ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$'; then
    echo "deps: generating the de_DE.UTF-8 locale"
    as_root localedef -i de_DE -f UTF-8 de_DE.UTF-8
fi

# The client tests run @supabase/postgrest-js, which needs Node 20 or newer (Debian 12's own is 18).
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "deps: installing Node.js 20 (nodejs from Debian is too old for the client tests)" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
    node -p 'process.versions.node.split(".")[0] >= 20' | grep -q true \
        || { echo "deps: Node.js 20+ is needed for the client tests (see nodejs.org)" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null; then
    echo "deps: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    rustup component add clippy rustfmt
fi

if [ "$(cargo pgrx --version 2>/dev/null || true)" != "cargo-pgrx $PGRX_VERSION" ]; then
    echo "deps: installing cargo-pgrx $PGRX_VERSION"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs "^pg15 *=" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
    echo "deps: cargo pgrx init --pg15 $PG_CONFIG"
    cargo pgrx init --pg15 "$PG_CONFIG"
fi

# The storage tests run the S3 backend against moto's S3-compatible server (PyPI).
if ! command -v moto_server >/dev/null; then
    echo "deps: installing moto[server] (an S3-compatible server for the storage tests)"
    python3 -m pip install -q 'moto[server]==5.2.1' \
        || python3 -m pip install -q --break-system-packages 'moto[server]==5.2.1'
    hash -r
fi
