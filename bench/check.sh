#!/usr/bin/env bash
# Measures `mitmwatch check` against the lab (13 targets, 20 ms per round
# trip) and prints the figures beside the targets of the check issue.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
# Built as `make release` builds it: static, as the packages ship it.
CGO_ENABLED=0 go build -trimpath -o bench/out/mitmwatch ./cmd/mitmwatch
go build -o bench/out/checkbench ./bench/checkbench
bench/out/checkbench -mitmwatch bench/out/mitmwatch "$@"
