// Package systemd holds mitmwatch's systemd units, not Go code:
// mitmwatch.service runs `mitmwatch run` as a hardened, unprivileged
// notify-type service with a watchdog, and capture.conf is the drop-in that
// grants only what passive capture needs (CAP_NET_RAW and packet sockets);
// mitmwatch.socket with the socket.conf drop-in has systemd bind the port
// and pass it (--web.systemd-socket).
//
// It is a package so that `go test ./...` checks them: the tests run
// `systemd-analyze verify` on the units exactly as shipped and require a
// `systemd-analyze security` exposure of at most 2.0, skipping when
// systemd-analyze is missing unless MITMWATCH_REQUIRE_TOOLS=1.
package systemd
