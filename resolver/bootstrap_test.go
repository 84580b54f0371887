package resolver

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

func TestParseServerPublishedBootstrap(t *testing.T) {
	t.Parallel()
	srv := mustServer(t, "https://dns.google/dns-query")
	want := addrs("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844")
	if d := cmp.Diff(want, srv.Bootstrap, addrCmp); d != "" {
		t.Errorf("dns.google (-want +got):\n%s", d)
	}
	if srv := mustServer(t, "https://DNS.Google./resolve"); len(srv.Bootstrap) != 4 {
		t.Errorf("dns.google written otherwise: %+v", srv)
	}
	for _, spec := range []string{"https://dns.lab.example/dns-query", "https://8.8.8.8/dns-query", "tls://8.8.8.8#dns.google"} {
		if srv := mustServer(t, spec); srv.Bootstrap != nil {
			t.Errorf("%s: bootstrap %v", spec, srv.Bootstrap)
		}
	}
}

func TestWithBootstrap(t *testing.T) {
	t.Parallel()
	v4 := addrs("192.0.2.53")
	srv, err := mustServer(t, "https://dns.lab.example/dns-query").WithBootstrap(v4)
	if err != nil || cmp.Diff(v4, srv.Bootstrap, addrCmp) != "" {
		t.Errorf("got %+v, %v", srv, err)
	}
	for _, tt := range []struct {
		spec  string
		addrs []netip.Addr
		want  string
	}{
		{"udp://192.0.2.53", v4, "bootstrap addresses apply only to https:// resolvers"},
		{"tls://192.0.2.53#dns.lab.example", v4, "bootstrap addresses apply only to https:// resolvers"},
		{"https://192.0.2.53/dns-query", v4, "bootstrap addresses are for a resolver given by name; 192.0.2.53 is an address already"},
		{"https://[2001:db8::53]/dns-query", v4, "bootstrap addresses are for a resolver given by name; 2001:db8::53 is an address already"},
		{"https://dns.lab.example/dns-query", nil, "no bootstrap address"},
		{"https://dns.lab.example/dns-query", addrs("0.0.0.0"), `invalid bootstrap address "0.0.0.0"`},
		{"https://dns.lab.example/dns-query", addrs("fe80::1%eth0"), `invalid bootstrap address "fe80::1%eth0"`},
	} {
		if _, err := mustServer(t, tt.spec).WithBootstrap(tt.addrs); err == nil || err.Error() != tt.want {
			t.Errorf("%s %v: got %v, want %s", tt.spec, tt.addrs, err, tt.want)
		}
	}
}

// namedDoH starts a lab DoH server and returns its endpoint under
// name (which resolves nowhere) with the port it listens on.
func namedDoH(t *testing.T, p *lab.PKI, name string) (Server, *lab.DoHServer) {
	t.Helper()
	s, err := lab.NewDoHServer(p, lab.DNSOptions{Zone: honestZone()})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, s)
	_, port, _ := net.SplitHostPort(s.Addr())
	return mustServer(t, "https://"+name+":"+port+lab.DoHPath), s
}

// A DoH reference given by a name that resolves nowhere works only through
// its bootstrap addresses, which get the name's SNI and verification.
func TestDoHBootstrap(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	honest := detector.DNSAnswer{Rcode: "NOERROR", Addrs: []netip.Addr{registryV4, registryV6}, MinTTL: lab.DNSTTL}
	newClient := func() *Client {
		c := &Client{TLSConfig: &tls.Config{RootCAs: p.PublicPool()}, Timeout: 2 * time.Second}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedAddr, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bootstrap address", func(t *testing.T) {
		t.Parallel()
		named, s := namedDoH(t, p, lab.DNSHost)
		// 127.0.0.2 refuses (the server holds 127.0.0.1 only): the next
		// address is tried.
		srv, err := named.WithBootstrap(addrs("127.0.0.2", "127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		got := newClient().Lookup(testContext(t), srv, "registry.lab.example")
		want := honest
		want.Resolver = srv.Spec
		if d := cmp.Diff(want, got, addrCmp, ignoreRTT); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
		if s.Queries() != 2 {
			t.Errorf("%d queries", s.Queries())
		}
	})

	t.Run("no bootstrap: no lookup at all", func(t *testing.T) {
		t.Parallel()
		named, s := namedDoH(t, p, lab.DNSHost)
		got := newClient().Lookup(testContext(t), named, "registry.lab.example")
		if got.Failure != detector.FailureDNS || !strings.Contains(got.Detail, "no bootstrap address for "+lab.DNSHost) {
			t.Errorf("got %+v", got)
		}
		if s.Queries() != 0 {
			t.Errorf("%d queries reached the server", s.Queries())
		}
	})

	t.Run("found through a reference by address, never the system's", func(t *testing.T) {
		t.Parallel()
		named, s := namedDoH(t, p, lab.DNSHost)
		zone := map[string][]netip.Addr{lab.DNSHost: addrs("127.0.0.1")}
		sys, err := lab.NewDNSServer(lab.DNSOptions{Zone: zone})
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, sys)
		ref, err := lab.NewDNSServer(lab.DNSOptions{Zone: zone})
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, ref)
		sysSrv := mustServer(t, "udp://"+sys.Addr())
		sysSrv.System = true
		c := newClient()
		c.Bootstrap = []Server{sysSrv, named, mustServer(t, "udp://"+closedAddr), mustServer(t, "udp://"+ref.Addr())}
		if got := c.Lookup(testContext(t), named, "registry.lab.example"); !got.Answered() || len(got.Addrs) != 2 {
			t.Errorf("got %+v", got)
		}
		if n := sys.Queries("udp"); n != 0 {
			t.Errorf("the system resolver was asked %d times", n)
		}
		if ref.Queries("udp") == 0 || s.Queries() != 2 {
			t.Errorf("reference asked %d times, DoH server %d", ref.Queries("udp"), s.Queries())
		}
	})

	t.Run("every bootstrap resolver fails", func(t *testing.T) {
		t.Parallel()
		named, _ := namedDoH(t, p, lab.DNSHost)
		c := newClient()
		c.Bootstrap = []Server{mustServer(t, "udp://"+closedAddr)}
		got := c.Lookup(testContext(t), named, "registry.lab.example")
		if got.Failure != detector.FailureDNS || !strings.Contains(got.Detail, "no bootstrap resolver found "+lab.DNSHost) ||
			!strings.Contains(got.Detail, "udp://"+closedAddr+": connection_refused") {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("the certificate must name the URL's host", func(t *testing.T) {
		t.Parallel()
		named, _ := namedDoH(t, p, "other.lab.example")
		srv, err := named.WithBootstrap(addrs("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		if got := newClient().Lookup(testContext(t), srv, "registry.lab.example"); got.Failure != detector.FailureHostnameMismatch {
			t.Errorf("got %+v, want %s", got, detector.FailureHostnameMismatch)
		}
	})
}
