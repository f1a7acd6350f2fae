#!/usr/bin/env bash
# The install script of the current version is kept in sql/ (one file per released version), so that
# upgrade scripts can be written against it. Fails when the extension's generated script differs from
# the committed one: run `scripts/check-sql.sh --update` and commit the result.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)
generated=$(find "${CARGO_TARGET_DIR:-$REPO/target}/sluice-package" -name "sluice--$version.sql" | head -n 1)
[ -n "$generated" ] || { echo "check-sql: run scripts/install-extension.sh first" >&2; exit 1; }
committed=$REPO/sql/sluice--$version.sql

# pgrx orders independent objects differently from build to build: compare the set of object blocks.
blocks() {
    # Source line comments (-- extension/src/x.rs:12) move with every edit; they are not the script.
    sed -E '/^-- [A-Za-z0-9_/.-]+[.]rs:[0-9]+$/d' "$1" \
        | awk 'BEGIN { RS = "/[*] <begin connected objects> [*]/" } { gsub(/\n/, "\\n"); print }' \
        | sort
}
if [ "${1:-}" = --update ]; then
    cp "$generated" "$committed"
    echo "updated $committed"
elif ! diff -q <(blocks "$committed") <(blocks "$generated") >/dev/null; then
    diff -u "$committed" "$generated" || true
    echo "check-sql: $committed is out of date; run scripts/check-sql.sh --update" >&2
    exit 1
fi
