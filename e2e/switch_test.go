package e2e

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpSwitch is the lab's patch panel: a loopback listener that relays each
// new connection to the upstream set last, so one target address can lead
// to the genuine origin, then to an interceptor, then nowhere, while the
// daemon's config stays the same. Connections already relayed keep their
// upstream.
type tcpSwitch struct {
	ln       net.Listener
	upstream atomic.Pointer[string]

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newSwitch starts a switch pointing at upstream; it stops with the test.
func newSwitch(t *testing.T, upstream string) *tcpSwitch {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	s := &tcpSwitch{ln: ln, conns: make(map[net.Conn]struct{})}
	s.Set(upstream)
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *tcpSwitch) Addr() string { return s.ln.Addr().String() }

// Set makes the next connections go to upstream.
func (s *tcpSwitch) Set(upstream string) { s.upstream.Store(&upstream) }

func (s *tcpSwitch) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.relay(c)
		}()
	}
}

// relay joins c to the current upstream. When the upstream cannot be
// reached the client gets a reset, as from a dead path.
func (s *tcpSwitch) relay(c net.Conn) {
	defer s.untrack(c)
	up, err := net.DialTimeout("tcp", *s.upstream.Load(), 2*time.Second)
	if err != nil {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		return
	}
	if !s.track(up) {
		up.Close()
		c.Close()
		return
	}
	defer s.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // either side ending ends both
	c.Close()
	up.Close()
	<-done
}

func (s *tcpSwitch) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *tcpSwitch) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// close stops accepting, cuts every relayed connection and waits for the
// relays to end.
func (s *tcpSwitch) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	s.wg.Wait()
}
