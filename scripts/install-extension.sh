#!/usr/bin/env bash
# Build the extension in release mode and install sluice.so, sluice.control and the SQL script into the
# system Postgres directories named by pg_config.
#
# This is `cargo pgrx install --release` done in two steps: `cargo pgrx package` lays the files out in a
# staging folder, then each file is copied next to its destination and renamed over it. `cargo pgrx
# install` overwrites sluice.so in place, which crashes every running server that has it loaded (a
# preloaded background worker died with SIGSEGV that way); a rename leaves them the old file.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

staging=${CARGO_TARGET_DIR:-$REPO/target}/sluice-package
rm -rf "$staging"
(cd "$REPO/extension" && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$staging")

(cd "$staging" && find . -type f) | while read -r file; do
    dest=/${file#./}
    as_root mkdir -p "$(dirname "$dest")"
    as_root cp "$staging/$file" "$dest.sluice-new"
    as_root mv -f "$dest.sluice-new" "$dest"
    echo "installed $dest"
done

# Hand-written upgrade scripts (sluice--<from>--<to>.sql) make ALTER EXTENSION sluice UPDATE work;
# the install scripts of earlier versions let a database be created at one (scripts/check-upgrade.sh).
# The current version's script is the one pgrx just generated, installed above.
sharedir=$("$PG_CONFIG" --sharedir)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)
for script in "$REPO"/sql/sluice--*.sql; do
    [ -e "$script" ] || continue
    name=$(basename "$script")
    [ "$name" = "sluice--$version.sql" ] && continue
    as_root cp "$script" "$sharedir/extension/$name.sluice-new"
    as_root mv -f "$sharedir/extension/$name.sluice-new" "$sharedir/extension/$name"
    echo "installed $sharedir/extension/$name"
done
