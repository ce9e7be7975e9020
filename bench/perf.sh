#!/usr/bin/env bash
# Benchmark suite of the issue "performance at scale" against a built Caddy: backlog and re-check
# drains, idle CPU and memory and admin latencies with many payments stored, first and duplicate
# notifications, each next to a baseline measured in the same run (see bench/perf/main.go).
# Usage: bench/perf.sh [flags of bench/perf]
#   bench/perf.sh                                    every scenario, 3 runs, 100k stored
#   bench/perf.sh -scenarios backlog,recheck -n 2000
#   bench/perf.sh -scenarios idle,admin -stored 1000000 -cache /var/tmp/cinetpay-perf
#   bench/perf.sh -scenarios backlog,first,duplicate -postgres postgres://user@127.0.0.1/db
#                                                    the same on PostgreSQL too, beside Badger
#   bench/perf.sh -h                                 every flag
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "building cmd/caddy ($(git describe --always --dirty 2>/dev/null || echo 'no git'))..."
go build -o "$work/caddy" ./cmd/caddy
go run ./bench/perf -caddy "$work/caddy" "$@"
