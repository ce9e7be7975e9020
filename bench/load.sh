#!/usr/bin/env bash
# Load test against a built Caddy: the module's paths next to plain Caddy, in the same run.
# Usage: bench/load.sh [seconds per scenario, default 10] [concurrency, default 16]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conc=${2:-16}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "building cmd/caddy..."
go build -o "$work/caddy" ./cmd/caddy
BENCH_DATA="$work" "$work/caddy" run --config bench/Caddyfile --adapter caddyfile >"$work/caddy.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
	curl -fsS -o /dev/null http://127.0.0.1:9300/ 2>/dev/null && break
	sleep 0.2
done
go run ./bench/loadgen -seconds "$secs" -concurrency "$conc"
