#!/usr/bin/env python3
"""Writes into quiet scopes while derivation works through a busy scope.

Against a running `cairn up` (cron on, an admin token): writes PRELOAD
memories into the scope `busy`, then 4 clients write 400 memories each into
`quiet-0..3` while derivation runs, and prints their latency (client
included) and throughput, with the outbox backlog before and after
(docs/benchmarks.md, "Writes to other scopes while derivation runs").

usage: tools/bench-quiet-scopes.py BASE_URL ADMIN_TOKEN [PRELOAD=3000]
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
admin = sys.argv[2]


def conn():
    return http.client.HTTPConnection(base.hostname, base.port, timeout=60)


def post(c, path, body, headers=None):
    h = {"content-type": "application/json"}
    h.update(headers or {})
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def write(c, scope, i):
    text = f"{scope} note {i}: the deploy of service {i % 97} went out with change {i * 7919 % 10007}"
    return post(c, "/v1/memory/write", {"scope": scope, "input_text": text, "memory_lane": "shared",
                                         "nodes": [{"client_id": f"{scope}-{i}", "type": "event", "text_summary": text}]})


def pending(c):
    c.request("GET", "/v1/admin/derive/status", headers={"x-admin-token": admin})
    r = c.getresponse()
    v = json.loads(r.read())
    return v.get("outbox", v).get("pending")


c = conn()
t0 = time.time()
for i in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3000):
    write(c, "busy", i)
print(f"preloaded busy scope in {time.time() - t0:.1f} s; pending jobs {pending(c)}", flush=True)

lat = []
lock = threading.Lock()


def worker(k, n):
    cc = conn()
    mine = []
    for i in range(n):
        s = time.perf_counter()
        write(cc, f"quiet-{k}", i)
        mine.append((time.perf_counter() - s) * 1000)
    with lock:
        lat.extend(mine)


t0 = time.time()
threads = [threading.Thread(target=worker, args=(k, 400)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
el = time.time() - t0
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
print(f"quiet writes c=4: n={len(lat)} p50 {q(50):.2f} ms p95 {q(95):.2f} ms p99 {q(99):.2f} ms max {lat[-1]:.1f} ms "
      f"{len(lat) / el:.0f} writes/s; pending after {pending(c)}", flush=True)
