#!/usr/bin/env bash
# Measures `mitmwatch check` in its default configuration (path probes,
# reference resolvers, canary, audit and toolchain discovery on) against 5
# hosts, their resolvers and the Go checksum database the toolchain names
# (a signed log, verified and proved consistent on every run) behind 20 ms
# of round-trip latency between network namespaces (netlab's wan relay),
# beside a bare Go program making the same verified handshakes
# concurrently, and prints the figures with the targets of the check
# issue.
#
# Needs root (network namespaces, mounts) and the ip command. Flags go to
# the benchmark: -runs N (default 7), -rtt 20ms, -mitmwatch BINARY (to
# measure another build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench/check.sh: needs root: it builds network namespaces" >&2
	exit 2
fi
mkdir -p bench/out
# Built as `make release` builds the mitmwatch the packages ship: static,
# stripped, and lean (check runs in it; the service's and capture's
# commands are mitmwatch-agent's, which check never starts).
CGO_ENABLED=0 go build -tags lean -trimpath -buildvcs=false -ldflags "-s -w" -o bench/out/mitmwatch ./cmd/mitmwatch
# The bare program it is compared with, built the same way.
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o bench/out/barehandshakes ./bench/barehandshakes
go build -o bench/out/checkbench ./bench/checkbench
bench/out/checkbench -mitmwatch bench/out/mitmwatch "$@"
