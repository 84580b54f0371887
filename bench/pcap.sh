#!/usr/bin/env bash
# Measures `mitmwatch pcap` on a large capture of real traffic, side by side
# with tshark extracting the same handshakes, both on one core.
#
# The capture is recorded in a network namespace of its own (loopback with a
# 1500-byte MTU and segmentation offload off, so packets have the size a NIC
# carries): Go's client and curl handshaking with a TLS 1.3 and a TLS 1.2
# origin on port 443, and bulk downloads through both. It is then repeated,
# shifted in time, up to MB megabytes (default 200; MB=1024 for the 1 GB of
# the issue, which takes tshark minutes).
#
# Needs root (namespace, capture); installs tshark and ethtool from Debian
# when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-200}
[ "$(id -u)" = 0 ] || { echo "bench/pcap.sh: run as root (network namespace and packet capture)" >&2; exit 1; }
if ! command -v tshark >/dev/null || ! command -v ethtool >/dev/null || ! command -v curl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq tshark ethtool curl >/dev/null
fi
out=bench/out/pcap
mkdir -p "$out"
bin=${MITMWATCH:-bench/out/mitmwatch}
if [ -z "${MITMWATCH:-}" ]; then
  CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/mitmwatch
fi
"$bin" pcap --help >/dev/null 2>&1 || { echo "bench/pcap.sh: $bin has no pcap command" >&2; exit 1; }

if [ ! -s "$out/big.pcap" ] || [ "${RECORD:-0}" = 1 ] || [ "$(stat -c %s "$out/big.pcap")" -lt $((MB << 20)) ]; then
  go test -c -o bench/out/passive.test ./passive
  unshare -n sh -c "ip link set lo up && ip link set lo mtu 1500 && ethtool -K lo tso off gso off gro off >/dev/null 2>&1;
    MITMWATCH_BENCH_OUT=$out MITMWATCH_BENCH_MB=$MB bench/out/passive.test -test.run '^TestRecordBench\$' -test.v" | grep -E 'packets|FAIL|ok|PASS'
fi
cap="$out/big.pcap"
size_mb=$(( $(stat -c %s "$cap") >> 20 ))

# measure CMD...: runs it twice on CPU 0 (the first run warms the page
# cache) and prints "wall_seconds user_seconds max_rss_kb" of the second.
measure() {
  taskset -c 0 "$@" >/dev/null 2>&1 || true
  /usr/bin/time -f '%e %U %M' -o "$out/time" taskset -c 0 "$@" >"$out/stdout" 2>/dev/null || true
  tail -n 1 "$out/time"
}

echo "capture: $cap, $size_mb MB"
read -r mw_wall mw_user mw_rss < <(GOMAXPROCS=1 measure "$bin" pcap "$cap" -o json --no-toolchain)
packets=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["passive"]["packets"])' "$out/stdout")
mw_conns=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(g["count"] for g in d["passive"]["groups"] if g["fingerprints"]["ja3"]))' "$out/stdout")
read -r ts_wall ts_user ts_rss < <(measure tshark -r "$cap" -Y tls.handshake -T fields -e tls.handshake.extensions_server_name)
ts_hellos=$(grep -c . "$out/stdout" || true)

rate() { python3 -c "import sys; w=float(sys.argv[2]); print(f'{int(sys.argv[1])/w/1e6:.2f}' if w > 0 else 'inf')" "$1" "$2"; }
printf '\n%-10s %10s %10s %12s %10s %s\n' tool wall_s user_s Mpackets/s rss_MB handshakes
printf '%-10s %10s %10s %12s %10s %s\n' mitmwatch "$mw_wall" "$mw_user" "$(rate "$packets" "$mw_wall")" $((mw_rss / 1024)) "$mw_conns ClientHellos"
printf '%-10s %10s %10s %12s %10s %s\n' tshark "$ts_wall" "$ts_user" "$(rate "$packets" "$ts_wall")" $((ts_rss / 1024)) "$ts_hellos SNI lines"
python3 -c "import sys; m,t=float(sys.argv[1]),float(sys.argv[2]); print(f'\n{sys.argv[3]} packets; mitmwatch is {t/m:.1f}x faster than tshark (target: at least 5x, and 1 M packets/s on one core)')" "$mw_wall" "$ts_wall" "$packets"
