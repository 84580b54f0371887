package scenario

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/probe"
)

// All returns every scenario, clean first.
func All() []Scenario {
	return slices.Concat(tlsScenarios(), evidenceScenarios(), sniScenarios(), dnsScenarios())
}

// tlsScenarios are the middleboxes on the connection itself.
func tlsScenarios() []Scenario {
	return []Scenario{
		{
			Name:        "clean",
			Description: "the genuine host, reached directly",
			Build: func(e *Env) (Setup, error) {
				return Setup{Targets: []config.Target{e.target("github.com", e.Origin.Addr())}}, nil
			},
			Want: Want{Verdict: detector.OK},
		},
		{
			Name:        "splicer",
			Description: "a TCP-terminating passthrough (SNI routing, peek-and-splice) relays the genuine TLS to an origin 40 ms beyond it",
			Build: func(e *Env) (Setup, error) {
				sp, err := lab.NewSplicer(e.Origin.Addr(), 40*time.Millisecond)
				if err != nil {
					return Setup{}, err
				}
				e.Track(sp)
				return Setup{Targets: []config.Target{e.target("index.crates.io", sp.Addr())},
					Path: probe.PathOptions{Samples: 3}}, nil
			},
			// On loopback nothing can place the relay by hop (netlab can,
			// with a real router): timing alone warns and sets no verdict.
			Want: Want{Verdict: detector.OK, Reasons: []detector.Reason{detector.ReasonRTTSplit}},
		},
		{
			Name:        "goproxy-explicit",
			Description: "goproxy intercepts as the HTTPS_PROXY, with a corporate root the system trusts",
			Build: func(e *Env) (Setup, error) {
				ic, err := lab.NewInterceptor(e.PKI, lab.InterceptorOptions{Routes: lab.Routes{"pypi.org": e.Origin.Addr()}})
				if err != nil {
					return Setup{}, err
				}
				e.Track(ic)
				t := e.target("pypi.org", "")
				return Setup{Targets: []config.Target{t}, Proxy: ic.URL()}, nil
			},
			Want: Want{Verdict: detector.Intercepted, Product: "goproxy",
				Reasons: []detector.Reason{detector.ReasonSystemRootOnly, detector.ReasonCAPinMismatch, detector.ReasonLeafWithoutSCT, detector.ReasonLeafSignedByRoot}},
		},
		{
			Name:        "goproxy-transparent",
			Description: "a firewall redirects port 443 into goproxy; the client thinks it dials directly",
			Build: func(e *Env) (Setup, error) {
				ic, err := lab.NewInterceptor(e.PKI, lab.InterceptorOptions{Routes: lab.Routes{"github.com": e.Origin.Addr()}})
				if err != nil {
					return Setup{}, err
				}
				e.Track(ic)
				// The firewall sends every port-443 connection into the proxy,
				// which learns the name from SNI as transparent proxies do.
				redirect := ic.RedirectDialer()
				dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
					return redirect(ctx, network, "github.com:443")
				}
				return Setup{Targets: []config.Target{e.target("github.com", "127.0.0.1:443")},
					Dialer: funcDialer(dial)}, nil
			},
			Want: Want{Verdict: detector.Intercepted, Product: "goproxy",
				Reasons: []detector.Reason{detector.ReasonSystemRootOnly, detector.ReasonCAPinMismatch}},
		},
		{
			Name:        "approved-inspection",
			Description: "goproxy intercepts with a CA that rules.yaml approves",
			Build: func(e *Env) (Setup, error) {
				ic, err := lab.NewInterceptor(e.PKI, lab.InterceptorOptions{Routes: lab.Routes{"ghcr.io": e.Origin.Addr()}})
				if err != nil {
					return Setup{}, err
				}
				e.Track(ic)
				t := e.target("ghcr.io", "")
				t.Expect.ALPN = nil // goproxy offers http/1.1 only; that is not what this scenario is about
				return Setup{Targets: []config.Target{t}, Proxy: ic.URL(),
					Policy: detector.Policy{ApprovedInspection: []detector.SPKI{detector.SPKIOf(e.PKI.EnterpriseRoot.Cert)}}}, nil
			},
			Want: Want{Verdict: detector.Inspected, Product: "goproxy", Reasons: []detector.Reason{detector.ReasonApprovedInspection}},
		},
		{
			Name:        "cloned-dn",
			Description: "an interceptor whose CA copies the public issuer's name exactly, with SCTs and backdated leaves",
			Build: func(e *Env) (Setup, error) {
				f, err := lab.NewForger(lab.ForgerOptions{CA: e.PKI.ClonedIntermediate, SCT: true, KeyPerHost: true,
					NotBefore: time.Now().Add(-30 * 24 * time.Hour)})
				if err != nil {
					return Setup{}, err
				}
				e.Track(f)
				return Setup{Targets: []config.Target{e.target("codeload.github.com", f.Addr())}}, nil
			},
			Want: Want{Verdict: detector.Intercepted, Reasons: []detector.Reason{detector.ReasonCAPinMismatch, detector.ReasonSystemRootOnly}},
		},
		{
			Name:        "tls12-interceptor",
			Description: "a FortiGate-style box that forges leaves with one key, speaks TLS 1.2 only and strips h2",
			Build: func(e *Env) (Setup, error) {
				f, err := lab.NewForger(lab.ForgerOptions{CA: e.PKI.ProductRoot, MaxVersion: tls.VersionTLS12,
					NextProtos: []string{"http/1.1"}})
				if err != nil {
					return Setup{}, err
				}
				e.Track(f)
				return Setup{Targets: []config.Target{
					e.target("files.pythonhosted.org", f.Addr()), e.target("index.crates.io", f.Addr())}}, nil
			},
			Want: Want{Verdict: detector.Intercepted, Product: "Fortinet", Reasons: []detector.Reason{
				detector.ReasonKnownProduct, detector.ReasonSystemRootOnly, detector.ReasonLeafKeyReused,
				detector.ReasonVersionBelow, detector.ReasonALPNBelow, detector.ReasonLeafFresh, detector.ReasonLeafWithoutSCT}},
		},
		{
			Name:        "approved-but-downgrading",
			Description: "approved inspection that only speaks TLS 1.2 and strips h2",
			Build: func(e *Env) (Setup, error) {
				f, err := lab.NewForger(lab.ForgerOptions{CA: e.PKI.EnterpriseRoot, MaxVersion: tls.VersionTLS12,
					NextProtos: []string{"http/1.1"}, KeyPerHost: true})
				if err != nil {
					return Setup{}, err
				}
				e.Track(f)
				return Setup{Targets: []config.Target{e.target("registry-1.docker.io", f.Addr())},
					Policy: detector.Policy{ApprovedInspection: []detector.SPKI{detector.SPKIOf(e.PKI.EnterpriseRoot.Cert)}}}, nil
			},
			Want: Want{Verdict: detector.Downgraded, Reasons: []detector.Reason{
				detector.ReasonApprovedInspection, detector.ReasonVersionBelow, detector.ReasonALPNBelow}},
		},
		{
			Name:        "downgrade-sentinel",
			Description: "a middlebox strips TLS 1.3 from the ClientHello without terminating TLS",
			Build: func(e *Env) (Setup, error) {
				r, err := lab.NewSentinelRelay(e.Origin.Addr())
				if err != nil {
					return Setup{}, err
				}
				e.Track(r)
				return Setup{Targets: []config.Target{e.target("static.crates.io", r.Addr())}}, nil
			},
			Want: Want{Verdict: detector.Downgraded, Reasons: []detector.Reason{detector.ReasonDowngradeSentinel}},
		},
		{
			Name:        "plaintext",
			Description: "a plain-HTTP server answers on port 443",
			Build: func(e *Env) (Setup, error) {
				p, err := lab.NewPlain(lab.PlainOptions{})
				if err != nil {
					return Setup{}, err
				}
				e.Track(p)
				return Setup{Targets: []config.Target{e.target("repo.maven.apache.org", p.Addr())}}, nil
			},
			Want: Want{Verdict: detector.Plaintext, Reasons: []detector.Reason{detector.ReasonPlaintext}},
		},
		{
			Name:        "block-page",
			Description: "a filter answers port 443 with an HTML block page",
			Build: func(e *Env) (Setup, error) {
				p, err := lab.NewPlain(lab.PlainOptions{Status: http.StatusForbidden,
					Headers: http.Header{"Via": {"1.1 filter.lab.example"}},
					Body:    "<html><head><title>Access Denied</title></head><body>This site is blocked by policy.</body></html>"})
				if err != nil {
					return Setup{}, err
				}
				e.Track(p)
				return Setup{Targets: []config.Target{e.target("objects.githubusercontent.com", p.Addr())}}, nil
			},
			Want: Want{Verdict: detector.Blocked, Reasons: []detector.Reason{detector.ReasonBlockPage, detector.ReasonProxyHeaders}},
		},
		{
			Name:        "proxy-refuses",
			Description: "the HTTPS_PROXY refuses CONNECT with a block page",
			Build: func(e *Env) (Setup, error) {
				p, err := lab.NewPlain(lab.PlainOptions{Status: http.StatusForbidden,
					Body: "<html><head><title>Access Denied</title></head><body>Category: blocked</body></html>"})
				if err != nil {
					return Setup{}, err
				}
				e.Track(p)
				return Setup{Targets: []config.Target{e.target("registry-1.docker.io", "")},
					Proxy: &url.URL{Scheme: "http", Host: p.Addr()}}, nil
			},
			Want: Want{Verdict: detector.Blocked, Reasons: []detector.Reason{detector.ReasonBlockPage}},
		},
		{
			Name:        "captive-redirect",
			Description: "a captive portal redirects every request to its login page",
			Build: func(e *Env) (Setup, error) {
				p, err := lab.NewPlain(lab.PlainOptions{Status: http.StatusFound,
					Headers: http.Header{"Location": {"http://" + lab.PortalHost + "/login"}}})
				if err != nil {
					return Setup{}, err
				}
				e.Track(p)
				return Setup{Targets: []config.Target{e.target("pypi.org", p.Addr())}}, nil
			},
			Want: Want{Verdict: detector.CaptivePortal, Reasons: []detector.Reason{detector.ReasonPortalRedirect}},
		},
		{
			Name:        "captive-tls",
			Description: "a captive portal answers TLS with its own, publicly valid certificate",
			Build: func(e *Env) (Setup, error) {
				p, err := lab.NewPortal(e.PKI)
				if err != nil {
					return Setup{}, err
				}
				e.Track(p)
				return Setup{Targets: []config.Target{e.target("github.com", p.Addr())}}, nil
			},
			Want: Want{Verdict: detector.CaptivePortal, Reasons: []detector.Reason{detector.ReasonCertOtherName}},
		},
		{
			Name:        "expired-cert",
			Description: "a private mirror serves an expired certificate",
			Build: func(e *Env) (Setup, error) {
				o, err := lab.NewOrigin(e.PKI, lab.OriginOptions{Leaf: func(name string) (*tls.Certificate, error) {
					return e.PKI.PublicIntermediate.Issue(lab.LeafOptions{NotBefore: time.Now().Add(-200 * 24 * time.Hour)}, name)
				}})
				if err != nil {
					return Setup{}, err
				}
				e.Track(o)
				return Setup{Targets: []config.Target{{Host: "mirror.lab.example", Port: 443, Address: o.Addr()}}}, nil
			},
			Want: Want{Verdict: detector.InvalidCert, Reasons: []detector.Reason{detector.ReasonCertInvalid}},
		},
		{
			Name:        "closed-port",
			Description: "nothing listens: the network is merely broken",
			Build: func(e *Env) (Setup, error) {
				addr, err := lab.ClosedAddr()
				if err != nil {
					return Setup{}, err
				}
				return Setup{Targets: []config.Target{e.target("ghcr.io", addr)}}, nil
			},
			Want: Want{Verdict: detector.Unreachable, Reasons: []detector.Reason{detector.ReasonUnreachable}},
		},
		{
			Name:        "black-hole",
			Description: "packets vanish: the handshake times out",
			Build: func(e *Env) (Setup, error) {
				b, err := lab.NewBlackhole()
				if err != nil {
					return Setup{}, err
				}
				e.Track(b)
				return Setup{Targets: []config.Target{e.target("index.crates.io", b.Addr())}}, nil
			},
			Want: Want{Verdict: detector.Unreachable, Reasons: []detector.Reason{detector.ReasonUnreachable}},
		},
	}
}
