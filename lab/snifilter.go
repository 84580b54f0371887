package lab

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// SNIAction is what an SNIFilter does to a ClientHello naming a blocked
// server.
type SNIAction int

// The actions of real filters.
const (
	// SNIReset answers the hello with a TCP reset, as a firewall that
	// rejects does (iptables' REJECT --reject-with tcp-reset, most
	// next-generation firewalls).
	SNIReset SNIAction = iota + 1
	// SNIDrop swallows the hello and everything after it, as a firewall
	// that drops does: the client can only wait.
	SNIDrop
)

func (a SNIAction) String() string {
	switch a {
	case SNIReset:
		return "reset"
	case SNIDrop:
		return "drop"
	}
	return fmt.Sprintf("SNIAction(%d)", int(a))
}

// SNIFilter is a firewall that blocks by server name. It accepts TCP,
// reads the ClientHello, and resets or drops the connection when the hello
// names a blocked server; any other is relayed, with what follows, to a
// real TLS origin. TCP always connects: only the name decides.
type SNIFilter struct {
	raw    *rawServer
	target string
	action SNIAction
	names  []string
}

// NewSNIFilter starts a filter in front of target ("127.0.0.1:port") that
// applies action to every ClientHello naming one of names (compared
// without regard to case). With no names it applies action to every hello,
// with or without a name: a server whose every handshake fails.
func NewSNIFilter(target string, action SNIAction, names ...string) (*SNIFilter, error) {
	if action != SNIReset && action != SNIDrop {
		return nil, fmt.Errorf("lab: SNI filter: unknown action %v", action)
	}
	f := &SNIFilter{target: target, action: action}
	for _, n := range names {
		f.names = append(f.names, strings.ToLower(n))
	}
	s, err := serveRaw(f.filter)
	if err != nil {
		return nil, fmt.Errorf("lab: SNI filter: %w", err)
	}
	f.raw = s
	return f, nil
}

func (f *SNIFilter) filter(c net.Conn, conns *connSet) {
	c.SetReadDeadline(time.Now().Add(relayHelloTimeout))
	first, err := readRecord(c)
	c.SetReadDeadline(time.Time{})
	name, _ := helloServerName(first)
	if len(f.names) == 0 || slices.Contains(f.names, strings.ToLower(name)) {
		switch f.action {
		case SNIReset:
			reset(c)
		case SNIDrop:
			io.Copy(io.Discard, c) // until the client or Close ends it
		}
		return
	}
	if err != nil {
		return
	}
	up, ok := dialUpstream(f.target, conns)
	if !ok {
		return // the origin is down: the client sees the connection closed
	}
	defer up.Close()
	if _, err := up.Write(first); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(up, c)
	}()
	pipe(c, up)
	<-done
}

// reset closes c with a TCP reset instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*trackedConn); ok {
		c = tc.Conn
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	c.Close()
}

// Addr is the filter's "127.0.0.1:port".
func (f *SNIFilter) Addr() string { return f.raw.Addr() }

// Close stops the filter and ends every held or relayed connection.
func (f *SNIFilter) Close() error { return f.raw.Close() }

// extensionServerName is the server_name extension (RFC 6066).
const extensionServerName = 0x0000

// helloServerName returns the host name a ClientHello record names in its
// server_name extension; false when the record is no whole ClientHello or
// names none.
func helloServerName(rec []byte) (string, bool) {
	l, err := parseHello(rec)
	if err != nil {
		return "", false
	}
	for p := l.extLenOff + 2; p+4 <= l.helloEnd; {
		typ := binary.BigEndian.Uint16(rec[p:])
		end := p + 4 + int(binary.BigEndian.Uint16(rec[p+2:]))
		if typ == extensionServerName {
			return firstHostName(rec[p+4 : end])
		}
		p = end
	}
	return "", false
}

// firstHostName reads the first host_name entry of a ServerNameList.
func firstHostName(b []byte) (string, bool) {
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return "", false
	}
	for b = b[2:]; len(b) >= 3; {
		typ, n := b[0], int(binary.BigEndian.Uint16(b[1:]))
		if 3+n > len(b) {
			return "", false
		}
		if typ == 0 { // host_name
			return string(b[3 : 3+n]), true
		}
		b = b[3+n:]
	}
	return "", false
}
