#!/usr/bin/env bash
# Measures `mitmwatch run` with 200 TLS targets on a 30 s interval against
# the lab, then Debian's prometheus-blackbox-exporter doing the same probes,
# and prints both side by side with the targets of the run issue: RSS, CPU,
# and /metrics latency under 50 concurrent scrapers.
#
# Flags go to the benchmark (-h lists them); a quick smoke run:
#   bench/daemon.sh -window 30s -warmup 5s -scrape-for 5s
# The window must be at least one interval (the daemon probes in rounds).
# Every child process ends with the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
# Built as `make release` builds mitmwatch-agent, which runs the service:
# static and stripped, as the packages ship it.
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o bench/out/mitmwatch-agent ./cmd/mitmwatch
go build -o bench/out/daemonbench ./bench/daemon
exec bench/out/daemonbench -mitmwatch bench/out/mitmwatch-agent "$@"
