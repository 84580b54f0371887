package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmwatch/mitmwatch/detector"
)

// tracePort is where the datagrams go: traceroute's base port plus the
// TTL, closed on every host that does not run traceroute's responder, so
// that a host that gets one answers port unreachable.
const tracePort = 33434

// hopAttempts datagrams are sent at most, hopRetry apart after the first.
const (
	hopAttempts = 6
	hopRetry    = 1100 * time.Millisecond
)

// hopProbe sends a datagram with IP TTL ttl to dst and reports whether it
// expired at a router on the way or reached dst, as tracepath does without
// privilege: IP_RECVERR queues the ICMP error on the socket, with who sent
// it. Routers limit the ICMP they send, so it tries again, within ctx.
func hopProbe(ctx context.Context, dst netip.Addr, ttl int, wait time.Duration) (detector.HopProbe, error) {
	hp := detector.HopProbe{TTL: ttl}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(tracePort+ttl))))
	if err != nil {
		return hp, fmt.Errorf("datagram to %s: %w", dst, err)
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return hp, fmt.Errorf("datagram to %s: %w", dst, err)
	}
	level, ttlOpt, errOpt := unix.IPPROTO_IP, unix.IP_TTL, unix.IP_RECVERR
	if dst.Is6() {
		level, ttlOpt, errOpt = unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, unix.IPV6_RECVERR
	}
	var serr error
	raw.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), level, ttlOpt, ttl); serr == nil {
			serr = unix.SetsockoptInt(int(fd), level, errOpt, 1)
		}
	})
	if serr != nil {
		return hp, fmt.Errorf("datagram to %s: setting TTL: %w", dst, serr)
	}
	end := time.Now().Add(wait + (hopAttempts-1)*hopRetry)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	for attempt := range hopAttempts {
		if time.Until(end) <= 0 {
			break
		}
		if _, err := conn.Write([]byte("mitmwatch path probe")); err != nil && !errors.Is(err, unix.ECONNREFUSED) {
			return hp, fmt.Errorf("datagram to %s: %w", dst, err)
		}
		// Linux sends one ICMP error per second to a destination after
		// a burst of six, for every target probed at once: after a
		// first wait of the round trip, wait out the limiter.
		until := time.Now().Add(hopRetry)
		if attempt == 0 {
			until = time.Now().Add(wait)
		}
		if until.After(end) {
			until = end
		}
		conn.SetReadDeadline(until)
		got, err := readICMPError(raw, dst, &hp)
		if got || err != nil {
			return hp, err
		}
	}
	return hp, nil // nothing came back: ICMP filtered or rate limited
}

// readICMPError waits for the socket's error queue until the read deadline
// and fills hp from the first ICMP error in it. It reports false when the
// deadline passed first.
func readICMPError(raw syscall.RawConn, dst netip.Addr, hp *detector.HopProbe) (bool, error) {
	var (
		got  bool
		rerr error
		buf  = make([]byte, 64)
		oob  = make([]byte, 512)
	)
	err := raw.Read(func(fd uintptr) bool {
		for {
			_, oobn, _, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			switch {
			case errors.Is(err, unix.EAGAIN):
				// A normal read would report the error as well; drain it
				// so the poller waits for the next one.
				unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
				return false
			case err != nil:
				rerr = err
				return true
			}
			if parseICMPError(oob[:oobn], dst, hp) {
				got = true
				return true
			}
		}
	})
	switch {
	case got:
		return true, nil
	case rerr != nil:
		return false, fmt.Errorf("datagram to %s: reading ICMP errors: %w", dst, rerr)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("datagram to %s: %w", dst, err)
	}
	return false, nil
}

// sizeofSockExtendedErr is the size of struct sock_extended_err, which
// the offender's address follows.
const sizeofSockExtendedErr = 16

// parseICMPError reads one IP_RECVERR control message: an ICMP time
// exceeded means the datagram expired at the sender, a port unreachable
// from dst means it reached dst.
func parseICMPError(oob []byte, dst netip.Addr, hp *detector.HopProbe) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		v4 := m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR
		v6 := m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if (!v4 && !v6) || len(m.Data) < sizeofSockExtendedErr {
			continue
		}
		origin, typ, code := m.Data[4], m.Data[5], m.Data[6]
		from := offender(m.Data[sizeofSockExtendedErr:])
		switch {
		case origin == unix.SO_EE_ORIGIN_ICMP && typ == 11, origin == unix.SO_EE_ORIGIN_ICMP6 && typ == 3:
			hp.Expired, hp.From = true, from
			return true
		case origin == unix.SO_EE_ORIGIN_ICMP && typ == 3 && code == 3, origin == unix.SO_EE_ORIGIN_ICMP6 && typ == 1 && code == 4:
			hp.From = from
			hp.Reached = from == dst || !from.IsValid()
			return true
		}
	}
	return false
}

// offender reads the sockaddr that follows a sock_extended_err.
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}
