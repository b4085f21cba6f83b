#!/usr/bin/env python3
"""Verify an exported Cairn pack by hand: no Cairn code, Python's standard
library only.

    curl -s -X POST localhost:3001/v1/memory/packs/export \
         -H 'x-admin-token: ...' -d '{"scope":"default"}' > pack.json
    python3 tools/verify_pack.py pack.json [--default-tenant default]

Checks, from the pack alone (export it with include_meta, the default):
the manifest hash, every commit's diff hash and commit hash, the parent
links, and every node's and edge's content hash against the commit that
attests it (the row's commit_id). Prints the first problem and exits 1,
or prints "ok" and exits 0. The canonical form is described in
docs/commit-chain.md.
"""

import argparse
import hashlib
import json
import sys
from decimal import Decimal


def js_number(x):
    """A number as JavaScript's Number.prototype.toString prints it."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int):
        return str(x)
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    d = Decimal(repr(abs(x))).normalize()  # shortest round-trip digits
    digits = "".join(str(t) for t in d.as_tuple().digits)
    k = len(digits)
    n = d.as_tuple().exponent + k  # value = 0.digits * 10^n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    mant = digits[0] + ("." + digits[1:] if k > 1 else "")
    return sign + mant + "e" + ("-" if e < 0 else "+") + str(abs(e))


def canonical(v):
    """fast-json-stable-stringify: sorted keys (UTF-16 order), no spaces."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return js_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v.keys(), key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(v[k]) for k in keys) + "}"
    raise TypeError(f"not JSON: {v!r}")


def sha(v):
    return hashlib.sha256(canonical(v).encode("utf-8")).hexdigest()


def fail(msg):
    print(f"FAILED: {msg}")
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export_json")
    ap.add_argument("--default-tenant", default="default", help="the server's memory_tenant_id")
    args = ap.parse_args()
    doc = json.load(open(args.export_json, encoding="utf-8"))
    pack = doc["pack"]
    if sha(pack) != doc["manifest"]["sha256"]:
        fail("manifest sha256 does not match the pack")
    tenant, scope = pack["tenant_id"], pack["scope"]
    key = scope if tenant == args.default_tenant else f"tenant:{tenant}::scope:{scope}"

    listed = {}  # commit id -> {row id: content hash}
    prev = None
    for c in pack["commits"]:
        if c["parent_hash"] != (prev["commit_hash"] if prev else "") or c["parent_id"] != (prev["id"] if prev else None):
            fail(f"commit {c['id']}: parent link broken")
        pre = {"parentHash": c["parent_hash"], "inputSha": c["input_sha256"], "diffSha": sha(c["diff"]),
               "scope": key, "actor": c["actor"]}
        if c["kind"] == "write":
            pre.update(model_version=c["model_version"], prompt_version=c["prompt_version"])
        else:
            pre["kind"] = c["kind"]
        if sha(pre) != c["commit_hash"]:
            fail(f"commit {c['id']}: commit_hash does not match")
        listed[c["id"]] = {r["id"]: r["content_sha256"] for r in c["diff"].get("nodes", []) + c["diff"].get("edges", [])}
        prev = c

    for n in pack["nodes"]:
        content = {k: n.get(k) for k in ("id", "client_id", "type", "tier", "title", "text_summary", "slots", "raw_ref",
                                         "evidence_ref", "embedding_sha256", "salience", "importance", "confidence",
                                         "memory_lane", "producer_agent_id", "owner_agent_id", "owner_team_id", "created_at")}
        content["scope"] = key
        if listed.get(n["commit_id"], {}).get(n["id"]) != sha(content):
            fail(f"node {n['id']}: content does not match commit {n['commit_id']}")
    for e in pack["edges"]:
        content = {"id": e["id"], "scope": key, "type": e["type"], "src_id": e["src_id"], "dst_id": e["dst_id"],
                   "weight": e["weight"], "confidence": e["confidence"], "decay_rate": e["decay_rate"],
                   "created_at": e["created_at"]}
        if listed.get(e["commit_id"], {}).get(e["id"]) != sha(content):
            fail(f"edge {e['id']}: content does not match commit {e['commit_id']}")
    print(f"ok: {len(pack['commits'])} commits, {len(pack['nodes'])} nodes, {len(pack['edges'])} edges verified")


if __name__ == "__main__":
    main()
