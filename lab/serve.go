package lab

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Every lab server listens here: loopback only, port chosen by the kernel.
func listen() (net.Listener, error) {
	return net.Listen("tcp", "127.0.0.1:0")
}

// ClosedAddr returns a loopback address where nothing listens, so a dial is
// refused at once. It binds a port, notes it and closes it; another process
// could take the port in between, which on a test machine is unlikely.
func ClosedAddr() (string, error) {
	ln, err := listen()
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// connSet holds the live connections of a server so that Close can end
// them, including those handed off (hijacked) to code the lab does not own.
type connSet struct {
	mu     sync.Mutex
	m      map[net.Conn]struct{}
	closed bool
}

// add records c; it reports false, and closes c, once the set is closed.
func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	if s.m == nil {
		s.m = make(map[net.Conn]struct{})
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	m := s.m
	s.m = nil
	s.mu.Unlock()
	for c := range m {
		c.Close()
	}
}

// trackedConn leaves its set when closed.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}

// CloseWrite half-closes, so a responder can finish its answer and still
// drain what the client sends (a lingering close, as net/http does).
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// trackingListener puts every accepted connection in a connSet.
type trackingListener struct {
	net.Listener
	set *connSet
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: l.set}
		if l.set.add(tc) {
			return tc, nil
		}
	}
}

// rawServer runs a handler per TCP connection, for the responders that do
// not speak TLS properly (or at all).
type rawServer struct {
	ln       net.Listener
	conns    connSet
	handlers sync.WaitGroup
	loopDone chan struct{}
	once     sync.Once
}

func serveRaw(handle func(c net.Conn, conns *connSet)) (*rawServer, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	s := &rawServer{loopDone: make(chan struct{})}
	s.ln = &trackingListener{Listener: ln, set: &s.conns}
	go func() {
		defer close(s.loopDone)
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.handlers.Add(1)
			go func() {
				defer s.handlers.Done()
				defer c.Close()
				handle(c, &s.conns)
			}()
		}
	}()
	return s, nil
}

func (s *rawServer) Addr() string { return s.ln.Addr().String() }

func (s *rawServer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		<-s.loopDone // no handler starts after this
		s.conns.closeAll()
		s.handlers.Wait()
	})
	return err
}

// httpServer serves net/http on a lab listener. wrap, if set, layers the
// accepted connections (latency, then TLS).
type httpServer struct {
	srv       *http.Server
	ln        net.Listener
	conns     connSet
	live      sync.WaitGroup // serving goroutines, via ConnState
	serveDone chan struct{}
	once      sync.Once
}

func serveHTTP(h http.Handler, wrap func(net.Listener) net.Listener) (*httpServer, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	s := &httpServer{serveDone: make(chan struct{})}
	s.ln = &trackingListener{Listener: ln, set: &s.conns}
	var l net.Listener = s.ln
	if wrap != nil {
		l = wrap(l)
	}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Failed handshakes are what the lab is for; they are not news.
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.live.Add(1)
			case http.StateHijacked, http.StateClosed:
				s.live.Done()
			}
		},
	}
	go func() {
		defer close(s.serveDone)
		s.srv.Serve(l)
	}()
	return s, nil
}

func (s *httpServer) Addr() string { return s.ln.Addr().String() }

func (s *httpServer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.srv.Close()
		<-s.serveDone // StateNew cannot fire after this
		s.conns.closeAll()
		s.live.Wait()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

// ok is the genuine origins' answer.
var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok")
})

// defaultNextProtos is what a modern server offers in ALPN.
var defaultNextProtos = []string{"h2", "http/1.1"}

// tlsWrap terminates TLS on the accepted connections with cfg.
func tlsWrap(cfg *tls.Config) func(net.Listener) net.Listener {
	return func(l net.Listener) net.Listener { return tls.NewListener(l, cfg) }
}
