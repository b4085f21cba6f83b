#!/usr/bin/env bash
# The hosted-staging stage of CI (docs/operations.md): serve `cairn up` the
# way a hosted tier runs it (memory auth and tenant quotas on, --sync full,
# the real embedder) on a temp data dir and a free port, then run the
# release gates against it: `cairn preflight --run-gates` and `cairn gate
# core` (with its perf step). Exits with the first failing gate's code (2 =
# a gate failed, 1 = could not run). The server is stopped by its pid.
#
# CAIRN_STAGING_AUTH_MODE (default api_key) exists so a test can show the
# stage fails on a misconfigured server.
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN=${CAIRN_BIN:-./target/release/cairn}
AUTH_MODE=${CAIRN_STAGING_AUTH_MODE:-api_key}

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-staging.XXXXXX")
data="$work/data"
artifacts="${CAIRN_STAGING_ARTIFACTS:-$work/artifacts}"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
listen="127.0.0.1:$port"
server_args=(--listen "$listen" --data-dir "$data" --admin-token "$token" --sync full
             --var "memory_auth_mode=$AUTH_MODE" --var tenant_quota_enabled=true)

"$CAIRN" up "${server_args[@]}" >"$work/server.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "${CAIRN_STAGING_KEEP:-}" = "" ]; then rm -rf "$work"; else echo "hosted staging: kept $work"; fi
}
trap cleanup EXIT

for _ in $(seq 1 240); do
    if curl -fsS "http://$listen/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "hosted staging: cairn up exited:"; cat "$work/server.log"; exit 1
    fi
    sleep 0.5
done

echo "hosted staging: preflight --run-gates against $listen"
status=0
"$CAIRN" preflight "${server_args[@]}" --run-gates --artifacts-dir "$artifacts" || status=$?
if [ "$status" -ne 0 ]; then echo "hosted staging: preflight failed ($status)"; exit "$status"; fi

echo "hosted staging: gate core against $listen"
"$CAIRN" gate core --base-url "http://$listen" --admin-token "$token" --data-dir "$data" \
    --artifacts-dir "$artifacts" || status=$?
if [ "$status" -ne 0 ]; then echo "hosted staging: core gate failed ($status)"; exit "$status"; fi
if [ "${CAIRN_STAGING_KEEP:-}" = "" ] && [ "${CAIRN_STAGING_ARTIFACTS:-}" = "" ]; then
    echo "hosted staging: passed (artifacts removed; CAIRN_STAGING_ARTIFACTS=DIR keeps them)"
else
    echo "hosted staging: passed (artifacts in $artifacts)"
fi
