//go:build linux

package netlab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
)

// origins is every genuine host at once: one TLS listener on port 443 of
// all the internet namespace's addresses, issuing from the stand-in public
// intermediate a leaf for whatever name the client sends in SNI, as
// lab.Origin does on loopback. An address with a fixed certificate (the
// test hosts of grading) presents that one whatever the SNI, and counts
// its handshakes.
type origins struct {
	fixed map[netip.Addr]*tls.Certificate
	hits  map[netip.Addr]*atomic.Int64

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	once sync.Once
	err  error

	mu    sync.Mutex
	leafs map[string]*tls.Certificate
}

func startOrigins(ns string, pki *lab.PKI, fixed map[netip.Addr]*tls.Certificate) (*origins, error) {
	o := &origins{done: make(chan struct{}), leafs: map[string]*tls.Certificate{}, fixed: fixed, hits: map[netip.Addr]*atomic.Int64{}}
	for a := range fixed {
		o.hits[a] = new(atomic.Int64)
	}
	err := Do(ns, func() (err error) {
		o.ln, err = net.Listen("tcp", ":443")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("origins: %w", err)
	}
	cfg := &tls.Config{
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if ap, err := netip.ParseAddrPort(hello.Conn.LocalAddr().String()); err == nil {
				if c, ok := o.fixed[ap.Addr().Unmap()]; ok {
					o.hits[ap.Addr().Unmap()].Add(1)
					return c, nil
				}
			}
			name := hello.ServerName
			if name == "" { // an IP literal: the address dialled
				name, _, _ = net.SplitHostPort(hello.Conn.LocalAddr().String())
			}
			return o.leaf(pki, name)
		},
	}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // failed handshakes are the lab's business
	}
	go func() {
		defer close(o.done)
		o.srv.Serve(tls.NewListener(o.ln, cfg))
	}()
	return o, nil
}

// leaf issues, once per name, a leaf that looks like a public CA's: from
// the public intermediate, backdated, with an embedded SCT.
func (o *origins) leaf(pki *lab.PKI, name string) (*tls.Certificate, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.leafs[name]; ok {
		return c, nil
	}
	c, err := pki.PublicIntermediate.Issue(lab.LeafOptions{}, name)
	if err != nil {
		return nil, err
	}
	o.leafs[name] = c
	return c, nil
}

// Close stops the listener and ends every connection; later calls return
// the first result.
func (o *origins) Close() error {
	o.once.Do(func() {
		o.err = o.srv.Close()
		<-o.done
		if errors.Is(o.err, net.ErrClosed) {
			o.err = nil
		}
	})
	return o.err
}
