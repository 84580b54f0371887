package probe

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/trust"
)

type labEnv struct {
	pki    *lab.PKI
	origin *lab.Origin
}

func newLab(t testing.TB, opts lab.OriginOptions) labEnv {
	t.Helper()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	o, err := lab.NewOrigin(pki, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return labEnv{pki, o}
}

func (l labEnv) prober() *Prober {
	return &Prober{PublicRoots: l.pki.PublicPool(), SystemRoots: l.pki.SystemPool()}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// staticResolver answers every name with fixed addresses, standing in for a
// resolver whose answers the test chooses.
type staticResolver []netip.Addr

func (r staticResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return r, nil
}

// portDialer sends every dial to one port, keeping the address it was asked
// for, so a resolved name can reach a loopback origin on a random port.
type portDialer struct{ port string }

func (d portDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	var nd net.Dialer
	return nd.DialContext(ctx, network, net.JoinHostPort(host, d.port))
}

func TestProbeGenuine(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	obs := l.prober().Probe(ctxT(t), Target{Host: "github.com", Port: 443, Address: l.origin.Addr()})
	if obs.Failure != detector.FailureNone {
		t.Fatalf("failure %s: %s", obs.Failure, obs.FailureDetail)
	}
	st := obs.TLS
	if st.Version != tls.VersionTLS13 || st.ALPN != "h2" || !st.NameMatch || !st.Public.OK() || !st.System.OK() {
		t.Errorf("TLS state = version %x alpn %q name %v public %v system %v", st.Version, st.ALPN, st.NameMatch, st.Public, st.System)
	}
	if len(st.Chain) != 2 || len(st.Public.Chains) == 0 || obs.BestVersion != tls.VersionTLS13 {
		t.Errorf("chain %d certs, %d verified chains, best version %x", len(st.Chain), len(st.Public.Chains), obs.BestVersion)
	}
	if obs.Path.Kind != detector.PathDirect || obs.ConnectedAddr.String() != l.origin.Addr() || obs.HandshakeTime <= 0 {
		t.Errorf("path %v, connected %v, handshake %v", obs.Path, obs.ConnectedAddr, obs.HandshakeTime)
	}
}

// TestProbeKeepsFailingChain proves the evidence survives a failed
// verification: an interceptor's chain is recorded with the failure.
func TestProbeKeepsFailingChain(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	f, err := lab.NewForger(lab.ForgerOptions{CA: l.pki.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	obs := l.prober().Probe(ctxT(t), Target{Host: "pypi.org", Port: 443, Address: f.Addr()})
	st := obs.TLS
	if st == nil || len(st.Chain) == 0 {
		t.Fatalf("no chain recorded: %+v", obs)
	}
	if st.Public.Failure != detector.FailureUnknownAuthority || !st.System.OK() {
		t.Errorf("public %s, system %s; want unknown authority and ok", st.Public.Failure, st.System.Failure)
	}
	if st.Chain[0].Issuer.CommonName != l.pki.EnterpriseRoot.Cert.Subject.CommonName {
		t.Errorf("leaf issuer %q", st.Chain[0].Issuer.CommonName)
	}
}

func TestProbeBestVersion(t *testing.T) {
	l := newLab(t, lab.OriginOptions{MaxVersion: tls.VersionTLS12})
	obs := l.prober().Probe(ctxT(t), Target{Host: "pypi.org", Port: 443, Address: l.origin.Addr()})
	if obs.TLS == nil || obs.TLS.Version != tls.VersionTLS12 {
		t.Fatalf("observation %+v", obs)
	}
	if obs.BestVersion != tls.VersionTLS12 || obs.BestVersionFailure != detector.FailureProtocolVersion {
		t.Errorf("best version %x failure %s, want TLS 1.2 and %s", obs.BestVersion, obs.BestVersionFailure, detector.FailureProtocolVersion)
	}
}

// TestProbeResolvesAndFallsBack resolves the name, fails on the first
// address and connects to the second, recording both.
func TestProbeResolvesAndFallsBack(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	_, port, _ := net.SplitHostPort(l.origin.Addr())
	p := l.prober()
	// 127.0.0.2 is loopback too, but the origin listens on 127.0.0.1 only.
	p.Resolver = staticResolver{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")}
	p.Dialer = portDialer{port}
	obs := p.Probe(ctxT(t), Target{Host: "github.com", Port: 443})
	if obs.Failure != detector.FailureNone {
		t.Fatalf("failure %s: %s", obs.Failure, obs.FailureDetail)
	}
	if len(obs.ResolvedAddrs) != 2 || obs.ConnectedAddr != netip.MustParseAddrPort("127.0.0.1:443") {
		t.Errorf("resolved %v connected %v", obs.ResolvedAddrs, obs.ConnectedAddr)
	}
}

func TestProbeThroughProxy(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	ic, err := lab.NewInterceptor(l.pki, lab.InterceptorOptions{Routes: lab.Routes{"ghcr.io": l.origin.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	p := l.prober()
	p.Proxy = func(u *url.URL) (*url.URL, error) {
		if u.Host != "ghcr.io:443" {
			t.Errorf("proxy asked for %q", u.Host)
		}
		return ic.URL(), nil
	}
	obs := p.Probe(ctxT(t), Target{Host: "ghcr.io", Port: 443})
	if !obs.Path.Proxied() || obs.Path.Proxy != ic.URL().Host {
		t.Errorf("path %+v, want proxy %s", obs.Path, ic.URL().Host)
	}
	if obs.TLS == nil || obs.TLS.Chain[0].Subject.Organization[0] != "GoProxy untrusted MITM proxy Inc" {
		t.Fatalf("not intercepted by goproxy: %+v", obs)
	}
}

func TestProbePlainAnswer(t *testing.T) {
	p, err := lab.NewPlain(lab.PlainOptions{Status: 302, Headers: map[string][]string{"Location": {"http://portal.lab.example/login"}, "Via": {"1.1 box"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l := newLab(t, lab.OriginOptions{})
	obs := l.prober().Probe(ctxT(t), Target{Host: "pypi.org", Port: 443, Address: p.Addr()})
	if obs.Failure != detector.FailureNotTLS || obs.Plain == nil {
		t.Fatalf("failure %s plain %+v", obs.Failure, obs.Plain)
	}
	if obs.Plain.Status != 302 || obs.Plain.Location != "http://portal.lab.example/login" || len(obs.Plain.ProxyHeaders) != 1 {
		t.Errorf("plain answer %+v", obs.Plain)
	}
}

func TestProbeUnreachable(t *testing.T) {
	closed, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	bh, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer bh.Close()
	l := newLab(t, lab.OriginOptions{})
	for _, tc := range []struct {
		addr string
		want detector.Failure
	}{{closed, detector.FailureRefused}, {bh.Addr(), detector.FailureTimeout}} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		obs := l.prober().Probe(ctx, Target{Host: "ghcr.io", Port: 443, Address: tc.addr})
		cancel()
		if obs.Failure != tc.want || obs.TLS != nil {
			t.Errorf("%s: failure %s (%s), want %s", tc.addr, obs.Failure, obs.FailureDetail, tc.want)
		}
	}
}

// BenchmarkProbe and BenchmarkBareHandshake compare a full probe (chain
// kept, verified against two stores) with a bare verified crypto/tls
// handshake against the same loopback origin.
func BenchmarkProbe(b *testing.B) {
	l := newLab(b, lab.OriginOptions{})
	p := l.prober()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		obs := p.Probe(ctx, Target{Host: "h" + strconv.Itoa(i%13) + ".lab.example", Port: 443, Address: l.origin.Addr()})
		if obs.Failure != detector.FailureNone {
			b.Fatal(obs.FailureDetail)
		}
	}
}

func BenchmarkBareHandshake(b *testing.B) {
	l := newLab(b, lab.OriginOptions{})
	roots := l.pki.SystemPool()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c, err := tls.Dial("tcp", l.origin.Addr(), &tls.Config{ServerName: "h" + strconv.Itoa(i%13) + ".lab.example", RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// SystemStore gives the system store at verification, so a store still
// loading is waited for only then.
func TestSystemStoreAtVerification(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	for _, c := range []struct {
		store *trust.Roots
		ok    bool
	}{{trust.NewRoots(l.pki.PublicRoot.Cert, l.pki.EnterpriseRoot.Cert, l.pki.ProductRoot.Cert), true}, {trust.NewRoots(), false}} {
		calls := 0
		p := &Prober{PublicRoots: l.pki.PublicPool(), SystemStore: func() *trust.Roots { calls++; return c.store }}
		obs := p.Probe(ctxT(t), Target{Host: "github.com", Port: 443, Address: l.origin.Addr()})
		if obs.TLS == nil {
			t.Fatalf("no handshake: %s", obs.FailureDetail)
		}
		if obs.TLS.System.OK() != c.ok || calls != 1 {
			t.Errorf("system verification %v after %d calls, want %v after 1", obs.TLS.System.OK(), calls, c.ok)
		}
	}
}
