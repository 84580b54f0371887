#!/usr/bin/env bash
# The long soak of `mitmwatch run`: daemon.TestSoak with a budget of probes
# (default 10,000 of the flapping target) instead of CI's 600. A target
# flaps between ok, down, intercepted and plain, another goes down and up,
# the daemon probes both every 5 ms and /metrics is gathered back to back.
# Prints probes, change events (against real changes), scrapes, and
# goroutines, open descriptors and RSS after one warm-up cycle and at the
# end; fails when they grow past the test's tolerances, when a change is
# logged other than once, or when the down-and-up target raises an alarm.
#
#   bench/soak.sh            # 10,000 probes, a couple of minutes
#   bench/soak.sh 50000
set -euo pipefail
cd "$(dirname "$0")/.."
probes=${1:-10000}
MITMWATCH_SOAK_PROBES=$probes go test -count=1 -run '^TestSoak$' -timeout 60m -v ./daemon |
	grep -E 'soak:|^(--- |ok|FAIL|PASS)|soak_test.go'
