#!/usr/bin/env bash
# Measures `mitmwatch sniff` live: a bulk TLS download at 1 Gbit/s through
# a veth pair between two network namespaces (offloads off: packets of the
# size a NIC carries), with handshakes made throughout. Reports the
# sniffer's CPU against the passive issue's target (< 2% of a core), the
# kernel's drops, and how many of the connections made it reported.
#
# Flags go to the benchmark (-h lists them), e.g. -gbit 2 -for 30s.
# Needs root; installs ethtool from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/live.sh: run as root (network namespaces and packet capture)" >&2; exit 1; }
if ! command -v ethtool >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ethtool >/dev/null
fi
mkdir -p bench/out
# Built as `make release` builds it: static, as the packages ship it.
CGO_ENABLED=0 go build -trimpath -o bench/out/mitmwatch ./cmd/mitmwatch
go build -o bench/out/livebench ./bench/live
exec bench/out/livebench -mitmwatch bench/out/mitmwatch "$@"
