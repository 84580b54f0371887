// Package probe makes the active measurement of one target. It reaches a
// host the way build tools do — resolving it, or through the proxy the
// environment names — performs a TLS handshake that accepts any chain, and
// records everything as a detector.Observation: the presented chain is kept
// even when it fails verification, because it is the evidence. Judging is
// left to package detector.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/trust"
)

// Target is what to probe. Address, when set, is dialled instead of
// resolving Host, as curl --resolve does; Addrs, when set, are the answers
// the system resolver already gave for Host.
type Target struct {
	Host    string
	Port    int
	Address string
	Addrs   []netip.Addr
}

// Dialer opens connections; *net.Dialer is one. Tests and the lab swap it
// to reroute traffic through a middlebox.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Prober probes targets. The zero value is not usable: roots are required.
type Prober struct {
	PublicRoots *x509.CertPool // the public (Mozilla) roots
	SystemRoots *x509.CertPool // this machine's trust store
	// PublicStore, when set, gives the public roots instead of
	// PublicRoots, at the moment a chain is verified, as SystemStore does;
	// only the roots the chain names are parsed (trust.Roots).
	PublicStore func() *trust.Roots
	// SystemStore, when set, gives the system store instead of
	// SystemRoots, at the moment a chain is verified: a store still
	// loading (reading the system's takes milliseconds) then loads while
	// the probe makes its round trips.
	SystemStore func() *trust.Roots

	Dialer   Dialer   // nil: a net.Dialer
	Resolver Resolver // nil: net.DefaultResolver
	// Proxy picks the proxy for a https URL, as http.Transport.Proxy does;
	// nil means direct. cmd/ wires it to HTTPS_PROXY/NO_PROXY.
	Proxy func(*url.URL) (*url.URL, error)
	Now   func() time.Time // verification time; nil: time.Now
	// Path says how much of a direct path to measure beside the
	// handshake (Observation.Trace); the zero value measures nothing.
	Path PathOptions
}

// nextProtos is what build tools offer: Go's net/http, curl and npm all
// offer h2 first.
var nextProtos = []string{"h2", "http/1.1"}

// publicRoots is the public roots that can verify chain, waiting for
// them if still loading.
func (p *Prober) publicRoots(chain []*x509.Certificate) *x509.CertPool {
	if p.PublicStore != nil {
		return p.PublicStore().For(chain)
	}
	return p.PublicRoots
}

// systemRoots is the system store's roots that can verify chain, waiting
// for it if it is still loading.
func (p *Prober) systemRoots(chain []*x509.Certificate) *x509.CertPool {
	if p.SystemStore != nil {
		return p.SystemStore().For(chain)
	}
	return p.SystemRoots
}

// firstAddr is the address a connection to t tries first, when it is
// known before dialling.
func (t Target) firstAddr() (netip.AddrPort, bool) {
	if t.Address != "" {
		ap, err := netip.ParseAddrPort(t.Address)
		return ap, err == nil
	}
	if len(t.Addrs) > 0 {
		return netip.AddrPortFrom(t.Addrs[0].Unmap(), uint16(t.Port)), true
	}
	return netip.AddrPort{}, false
}

// Probe observes one target within ctx's deadline. It never returns an
// error: a failure is part of the observation.
func (p *Prober) Probe(ctx context.Context, t Target) detector.Observation {
	obs := detector.Observation{Host: t.Host, Port: t.Port, Path: detector.Path{Kind: detector.PathDirect}}
	tracing := p.Path.Samples > 0 || p.Path.MaxHops > 0
	tctx, stopTrace := context.WithCancel(ctx)
	defer stopTrace()
	// The path samples start with the main connection, towards the address
	// it will most likely reach, so they cost no round trip of their own.
	var tr *trace
	early, stopEarly := context.WithCancel(tctx)
	defer stopEarly()
	if first, ok := t.firstAddr(); tracing && ok && !p.Proxied(t) {
		tr = p.startTrace(early, t.Host, first)
	}
	opened := time.Now()
	conn, err := p.connect(ctx, t, &obs)
	if err != nil {
		obs.Failure, obs.FailureDetail = detector.FailureOf(err), err.Error()
		return obs
	}
	defer conn.Close()
	// A control, if one is needed, goes where this connection went; rtt
	// is the round trip that opened it.
	ct, rtt := t, obs.ConnectTime
	if obs.Path.Proxied() {
		rtt = time.Since(opened)
	} else {
		ct.Address, ct.Addrs = obs.ConnectedAddr.String(), nil
	}

	if tr != nil && tr.addr != obs.ConnectedAddr {
		stopEarly() // the connection went to another of the addresses
		tr = nil
	}
	if tr == nil && tracing && obs.Path.Kind == detector.PathDirect {
		tr = p.startTrace(tctx, t.Host, obs.ConnectedAddr)
	}
	rec := &recordingConn{Conn: conn}
	tc := tls.Client(rec, clientConfig(t.Host))
	start := time.Now()
	obs.Control, err = p.watchedHandshake(ctx, tc, rec, ct, rtt)
	obs.HandshakeTime = time.Since(start)
	// Blocked by name: the samples name the host too and will not be
	// answered, and no TTL finds what answers a name nothing answers.
	byName := obs.Control != nil && obs.Control.Answered
	if tr != nil {
		if byName {
			stopTrace()
		}
		var own *sample
		if d, ok := rec.helloRTT(); ok {
			own = &sample{connect: obs.ConnectTime, hello: d, answered: true}
		}
		// Cut off: the connection opened but the handshake was reset,
		// closed or left unanswered, as an injector on the path does.
		cutOff := err != nil && !byName && unanswered(err)
		obs.Trace = tr.finish(ctx, own, cutOff)
	}
	if err != nil {
		obs.Failure, obs.FailureDetail = detector.FailureOf(err), err.Error()
		if obs.Failure == detector.FailureNotTLS {
			obs.Plain = p.plainAnswer(ctx, t, rec)
		}
		return obs
	}
	cs := tc.ConnectionState()
	obs.TLS = p.tlsState(t.Host, cs)
	obs.BestVersion = cs.Version
	if cs.Version < tls.VersionTLS13 {
		obs.BestVersion, obs.BestVersionFailure = p.bestVersion(ctx, t, cs.Version)
	}
	return obs
}

// tlsState records the negotiated parameters and verifies the chain
// against each store separately, so "trusted here but not publicly" shows.
func (p *Prober) tlsState(host string, cs tls.ConnectionState) *detector.TLSState {
	st := &detector.TLSState{
		Version:     cs.Version,
		CipherSuite: cs.CipherSuite,
		ALPN:        cs.NegotiatedProtocol,
		Chain:       cs.PeerCertificates,
	}
	if len(cs.PeerCertificates) == 0 {
		return st
	}
	leaf := cs.PeerCertificates[0]
	st.NameMatch = leaf.VerifyHostname(host) == nil
	st.Public = trust.Verify(cs.PeerCertificates, p.publicRoots(cs.PeerCertificates), p.now())
	st.System = trust.Verify(cs.PeerCertificates, p.systemRoots(cs.PeerCertificates), p.now())
	return st
}

// bestVersion learns whether the path allows TLS 1.3 at all, with a
// separate attempt that offers nothing else.
func (p *Prober) bestVersion(ctx context.Context, t Target, negotiated uint16) (uint16, detector.Failure) {
	var scratch detector.Observation
	conn, err := p.connect(ctx, t, &scratch)
	if err != nil {
		return negotiated, detector.FailureOf(err)
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{
		ServerName:         t.Host,
		InsecureSkipVerify: true, // only the version matters here
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return negotiated, detector.FailureOf(err)
	}
	return tls.VersionTLS13, detector.FailureNone
}

// Proxied reports whether the target is reached through a proxy, which
// then resolves the name itself.
func (p *Prober) Proxied(t Target) bool {
	if p.Proxy == nil {
		return false
	}
	u, err := p.Proxy(&url.URL{Scheme: "https", Host: net.JoinHostPort(t.Host, strconv.Itoa(t.Port))})
	return err == nil && u != nil
}

// connect opens a TCP connection to the target, directly or through the
// configured proxy, recording addresses and timings into obs.
func (p *Prober) connect(ctx context.Context, t Target, obs *detector.Observation) (net.Conn, error) {
	hostport := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	if p.Proxy != nil {
		u, err := p.Proxy(&url.URL{Scheme: "https", Host: hostport})
		if err != nil {
			return nil, fmt.Errorf("choosing proxy for %s: %w", hostport, err)
		}
		if u != nil {
			obs.Path = detector.Path{Kind: detector.PathProxy, Proxy: u.Host}
			return p.connectProxy(ctx, u, hostport, obs)
		}
	}
	if t.Address != "" {
		ap, err := netip.ParseAddrPort(t.Address)
		if err != nil {
			return nil, fmt.Errorf("target %s: address %q: %w", hostport, t.Address, err)
		}
		obs.ResolvedAddrs = []netip.Addr{ap.Addr()}
		return p.dialAddr(ctx, ap, obs)
	}
	addrs := t.Addrs
	if len(addrs) == 0 {
		var err error
		if addrs, err = p.resolver().LookupNetIP(ctx, "ip", t.Host); err != nil {
			return nil, fmt.Errorf("resolving %s: %w", t.Host, err)
		}
	}
	obs.ResolvedAddrs = addrs
	var lastErr error
	for _, a := range addrs {
		conn, err := p.dialAddr(ctx, netip.AddrPortFrom(a.Unmap(), uint16(t.Port)), obs)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("resolving %s: no addresses", t.Host)
	}
	return nil, lastErr
}

func (p *Prober) dialAddr(ctx context.Context, ap netip.AddrPort, obs *detector.Observation) (net.Conn, error) {
	start := time.Now()
	conn, err := p.dialer().DialContext(ctx, "tcp", ap.String())
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", ap, err)
	}
	obs.ConnectTime = time.Since(start)
	obs.ConnectedAddr = ap
	return conn, nil
}

func (p *Prober) dialer() Dialer {
	if p.Dialer != nil {
		return p.Dialer
	}
	return &net.Dialer{}
}

func (p *Prober) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

func (p *Prober) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
