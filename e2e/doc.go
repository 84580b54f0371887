// Package e2e holds mitmwatch's end-to-end tests, and nothing else.
//
// The other packages test their own code in-process. These tests build the
// real binary, run `mitmwatch run` as a subprocess against the in-process
// lab (package lab), and look at it the way its users do: a real Prometheus
// server scrapes it with the shipped alert rules and must fire and resolve
// the alerts, and headless Chromium renders its status page. They are a
// package of their own because they need programs from outside Go (Debian's
// prometheus and chromium packages) and seconds rather than milliseconds:
// without those programs they skip, unless MITMWATCH_REQUIRE_TOOLS=1 (as in
// CI) makes a missing one a failure.
package e2e
