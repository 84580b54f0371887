//go:build unix

package probe

import (
	"fmt"
	"net"
	"syscall"
)

// setTTL sets the IP TTL (IPv6 hop limit) of conn's socket, through
// syscall.RawConn: no raw socket and no privilege. restore puts back the
// system's value, so that closing reaches the peer.
func setTTL(conn net.Conn, v6 bool, ttl int) (restore func(), err error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not a socket", errNoTTL, conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoTTL, err)
	}
	level, opt := syscall.IPPROTO_IP, syscall.IP_TTL
	if v6 {
		level, opt = syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
	}
	var old int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if old, serr = syscall.GetsockoptInt(int(fd), level, opt); serr == nil {
			serr = syscall.SetsockoptInt(int(fd), level, opt, ttl)
		}
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoTTL, err)
	}
	if serr != nil {
		return nil, fmt.Errorf("%w: %v", errNoTTL, serr)
	}
	return func() {
		raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), level, opt, old) })
	}, nil
}
