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

# Hand-written upgrade scripts (sluice--<from>--<to>.sql) make ALTER EXTENSION sluice UPDATE work.
sharedir=$("$PG_CONFIG" --sharedir)
for upgrade in "$REPO"/sql/sluice--*--*.sql; do
    [ -e "$upgrade" ] || continue
    as_root cp "$upgrade" "$sharedir/extension/$(basename "$upgrade").sluice-new"
    as_root mv -f "$sharedir/extension/$(basename "$upgrade").sluice-new" "$sharedir/extension/$(basename "$upgrade")"
    echo "installed $sharedir/extension/$(basename "$upgrade")"
done
