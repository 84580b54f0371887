package resolver

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
)

// TestEncryptedConnectionsAreShared: a burst of lookups to a DoT and a DoH
// resolver costs a handshake or so each, not one per query; after Close
// the client dials again.
func TestEncryptedConnectionsAreShared(t *testing.T) {
	p := newPKI(t)
	dot, doh := encryptedResolvers(t, p)
	var handshakes atomic.Int64
	cfg := &tls.Config{RootCAs: p.PublicPool(), VerifyConnection: func(tls.ConnectionState) error {
		handshakes.Add(1)
		return nil
	}}
	c := &Client{TLSConfig: cfg, Timeout: 2 * time.Second}
	defer c.Close()
	servers := []Server{mustServer(t, "tls://"+dot.Addr()+"#"+lab.DNSHost), mustServer(t, doh.URL())}

	burst := func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for _, a := range c.LookupAll(testContext(t), servers, "registry.lab.example") {
					if !a.Answered() || len(a.Addrs) == 0 {
						t.Errorf("%s: %+v", a.Resolver, a)
					}
				}
			})
		}
		wg.Wait()
	}
	burst()
	first := handshakes.Load()
	// 16 queries per server; racing first dials may open a few each.
	if first < 2 || first > 8 {
		t.Errorf("first burst: %d handshakes for 2 resolvers", first)
	}
	burst()
	if again := handshakes.Load() - first; again != 0 {
		t.Errorf("second burst dialled %d new connections, want 0", again)
	}
	c.Close()
	burst()
	if after := handshakes.Load() - first; after < 2 {
		t.Errorf("after Close: %d new handshakes, want the connections redialled", after)
	}
}

// TestDoTServerClosedConnection: when the resolver goes away the shared
// connection's queries fail cleanly instead of hanging.
func TestDoTServerGone(t *testing.T) {
	p := newPKI(t)
	dot, err := lab.NewDoTServer(p, lab.DNSOptions{Zone: honestZone()})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{TLSConfig: &tls.Config{RootCAs: p.PublicPool()}, Timeout: time.Second}
	defer c.Close()
	srv := mustServer(t, "tls://"+dot.Addr()+"#"+lab.DNSHost)
	if a := c.Lookup(testContext(t), srv, "registry.lab.example"); !a.Answered() {
		t.Fatalf("first lookup: %+v", a)
	}
	dot.Close()
	start := time.Now()
	a := c.Lookup(testContext(t), srv, "registry.lab.example")
	if a.Answered() || a.Failure == "" {
		t.Errorf("lookup after the server went away: %+v", a)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("took %v", elapsed)
	}
}

func mustServer(t *testing.T, spec string) Server {
	t.Helper()
	s, err := ParseServer(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
