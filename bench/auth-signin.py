#!/usr/bin/env python3
"""Sign-in cost through the sidecar: POST /auth/v1/token?grant_type=password, end to end.

    bench/auth-signin.py URL ANON_KEY [REQUESTS] [CONCURRENCY]

Signs up one user (the sidecar must run with SLUICE_AUTH_AUTOCONFIRM=true and rate limits raised
above REQUESTS, e.g. SLUICE_AUTH_RATE_LIMIT_EMAIL=100000 SLUICE_AUTH_RATE_LIMIT_IP=100000), then
signs in REQUESTS times from CONCURRENCY threads and prints req/s and latency percentiles.
Standard library only.
"""
import json
import sys
import threading
import time
import urllib.request
import uuid


def post(url, key, body):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"apikey": key, "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def main():
    base, key = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    email = f"bench-{uuid.uuid4()}@example.com"
    password = "bench-password-123"
    post(f"{base}/auth/v1/signup", key, {"email": email, "password": password})

    latencies = []
    lock = threading.Lock()
    per_thread = total // concurrency

    def work():
        mine = []
        for _ in range(per_thread):
            started = time.perf_counter()
            session = post(
                f"{base}/auth/v1/token?grant_type=password",
                key,
                {"email": email, "password": password},
            )
            mine.append((time.perf_counter() - started) * 1000)
            assert session["access_token"]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    print(
        f"sign-ins: {len(latencies)}, concurrency {concurrency}: {len(latencies) / elapsed:.1f} req/s, "
        f"p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms"
    )


if __name__ == "__main__":
    main()
