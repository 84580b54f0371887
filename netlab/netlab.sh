#!/usr/bin/env bash
# The network-namespace lab by hand (see netlab/README.md). As root:
#   netlab/netlab.sh scenarios
#   netlab/netlab.sh up SCENARIO          # builds netlab and mitmwatch, starts the lab in the background
#   netlab/netlab.sh exec -- CMD [ARG...] # runs CMD in the client namespace (mitmwatch is on PATH)
#   netlab/netlab.sh down
#   netlab/netlab.sh run SCENARIO         # one scenario as the tests run it: PASS or FAIL
#   netlab/netlab.sh list | prune
set -euo pipefail
cd "$(dirname "$0")/.."

state=${NETLAB_STATE:-/run/netlab-manual}
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
build() {
  mkdir -p "$state"
  go build -o "$state/netlab" ./netlab/cmd/netlab
  go build -o "$state/mitmwatch" ./cmd/mitmwatch
}
[ "$(id -u)" = 0 ] || { echo "netlab: run as root (ip netns needs it)" >&2; exit 1; }

case "${1:-}" in
up)
  [ $# -eq 2 ] || usage
  build
  # One process owns the lab until `down` (SIGTERM): start it detached and
  # wait, bounded, until it says the lab is up or dies.
  setsid "$state/netlab" up "$2" >"$state/up.log" 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 1 600); do
    if grep -q '^netlab: up' "$state/up.log"; then cat "$state/up.log"; exit 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$state/up.log" >&2; exit 1; fi
    sleep 0.1
  done
  echo "netlab: the lab is not up after 60 s; stopping it" >&2
  kill "$pid"
  exit 1
  ;;
exec)
  shift
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || usage
  [ -x "$state/netlab" ] || { echo "netlab: no lab built here (netlab.sh up SCENARIO)" >&2; exit 1; }
  exec "$state/netlab" exec -- "$@"
  ;;
down)
  [ -x "$state/netlab" ] || { echo "netlab: no lab built here" >&2; exit 1; }
  exec "$state/netlab" down
  ;;
run)
  [ $# -eq 2 ] || usage
  build
  exec "$state/netlab" run -mitmwatch "$state/mitmwatch" "$2"
  ;;
scenarios | list | prune)
  build
  exec "$state/netlab" "$1"
  ;;
*) usage ;;
esac
