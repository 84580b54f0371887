package lab

import (
	"fmt"
	"io"
	"net"
	"time"
)

// Splicer is a TCP-terminating passthrough: it accepts the connection
// itself, as an SNI-routing proxy or a peek-and-splice box does, and relays
// the bytes, TLS included, unchanged to an origin that is Delay away. The
// client gets the genuine chain; only the timing shows that TCP was answered
// nearer than TLS.
type Splicer struct {
	raw    *rawServer
	target string
	delay  time.Duration
}

// NewSplicer starts a splicer relaying to target ("127.0.0.1:port"); every
// relayed flight waits half of delay each way, so one round trip through
// the splicer costs delay more than one to it.
func NewSplicer(target string, delay time.Duration) (*Splicer, error) {
	s := &Splicer{target: target, delay: delay}
	raw, err := serveRaw(s.relay)
	if err != nil {
		return nil, fmt.Errorf("lab: splicer: %w", err)
	}
	s.raw = raw
	return s, nil
}

func (s *Splicer) relay(c net.Conn, conns *connSet) {
	up, ok := dialUpstream(s.target, conns)
	if !ok {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.pipe(up, c)
	}()
	s.pipe(c, up)
	<-done
}

// pipe copies src to dst, each chunk after half the delay, and half-closes
// dst at the end; on an error it closes both.
func (s *Splicer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(s.delay / 2)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst.Close()
				src.Close()
				return
			}
		}
		if err == io.EOF {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
		if err != nil {
			dst.Close()
			src.Close()
			return
		}
	}
}

// Addr is the splicer's "127.0.0.1:port".
func (s *Splicer) Addr() string { return s.raw.Addr() }

// Close stops the splicer and ends every relayed connection.
func (s *Splicer) Close() error { return s.raw.Close() }
