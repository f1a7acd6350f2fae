#!/usr/bin/env python3
"""Wake-up latency of the change log: from a writer's COMMIT returning to a LISTENing reader holding
the event (notification received, then read with sluice.changes_after).

    bench/wakeup-latency.py postgres://postgres:postgres@127.0.0.1:54332/postgres [samples]

Needs psycopg2 (pip install psycopg2-binary). Runs once per numbering mode.
"""
import select
import sys
import time

import psycopg2

url = sys.argv[1]
samples = int(sys.argv[2]) if len(sys.argv) > 2 else 300


def connect():
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


setup = connect().cursor()
setup.execute("DROP TABLE IF EXISTS wakeup_bench")
setup.execute("CREATE TABLE wakeup_bench (id serial PRIMARY KEY, body text)")
setup.execute("SELECT sluice.enable_realtime('wakeup_bench')")

for mode in ("worker", "inline"):
    reader = connect()
    rc = reader.cursor()
    rc.execute("SELECT coalesce(max(position), 0) FROM sluice.changes")
    last = rc.fetchone()[0]
    rc.execute("LISTEN sluice_changes")
    writer = connect().cursor()
    writer.execute(f"SET sluice.numbering = {mode}")
    latencies = []
    for _ in range(samples):
        writer.execute("INSERT INTO wakeup_bench (body) VALUES ('x')")
        committed = time.perf_counter()
        got = False
        while not got:
            if select.select([reader], [], [], 5) == ([], [], []):
                raise SystemExit(f"{mode}: no notification within 5 s")
            reader.poll()
            while reader.notifies:
                reader.notifies.pop()
                rc.execute("SELECT position FROM sluice.changes_after(%s, 1000)", (last,))
                rows = rc.fetchall()
                if rows:
                    last = rows[-1][0]
                    got = True
        latencies.append((time.perf_counter() - committed) * 1000)
        time.sleep(0.002)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(f"{mode:6}: commit -> event in hand over {samples} one-row commits: "
          f"p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, max {latencies[-1]:.2f} ms")
    reader.close()
setup.execute("DROP TABLE wakeup_bench")
