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
if [ "${1:-}" = --update ]; then
    cp "$generated" "$committed"
    echo "updated $committed"
elif ! diff -u "$committed" "$generated"; then
    echo "check-sql: $committed is out of date; run scripts/check-sql.sh --update" >&2
    exit 1
fi
