package tools_test

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/tools"
	"github.com/mitmwatch/mitmwatch/trust"
)

// world is the lab's PKI seen from one machine: the public roots, a system
// store that also holds the corporate inspection root, and the stores each
// tool keeps apart from it.
type world struct {
	t   *testing.T
	pki *lab.PKI
	now time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, pki: pki, now: time.Now()}
}

func pool(cas ...*lab.CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

func certs(cas ...*lab.CA) []trust.Block {
	var out []trust.Block
	for _, ca := range cas {
		out = append(out, trust.BlockOf(ca.Cert))
	}
	return out
}

// chain issues a leaf for names from ca, with what a server sends after it.
func (w *world) chain(ca *lab.CA, opts lab.LeafOptions, extra []*x509.Certificate, names ...string) []*x509.Certificate {
	w.t.Helper()
	c, err := ca.Issue(opts, names...)
	if err != nil {
		w.t.Fatal(err)
	}
	out := []*x509.Certificate{c.Leaf}
	for _, der := range c.Certificate[1:] {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, x)
	}
	return append(out, extra...)
}

// judge is what check would conclude for each observed chain (host,
// chain pairs), judged together at the clock `at`.
func (w *world) judge(at time.Time, system *x509.CertPool, pol detector.Policy, obs ...detector.Observation) []detector.Result {
	var cases []detector.Case
	for _, o := range obs {
		if o.TLS != nil {
			o.TLS.Public = trust.Verify(o.TLS.Chain, pool(w.pki.PublicRoot), at)
			o.TLS.System = trust.Verify(o.TLS.Chain, system, at)
		}
		cases = append(cases, detector.Case{Obs: o})
	}
	return detector.Judge(cases, pol, at)
}

func observed(host string, chain []*x509.Certificate) detector.Observation {
	return detector.Observation{Host: host, Port: 443, Path: detector.Path{Kind: detector.PathDirect},
		TLS: &detector.TLSState{Version: tls.VersionTLS13, Chain: chain, NameMatch: chain[0].VerifyHostname(host) == nil}}
}

// The tools of the table: each with the store it really keeps apart.
func (w *world) tool(n tools.Name) tools.Tool {
	system := tools.Store{Description: "system store", System: true, Files: []string{"/etc/ssl/certs/ca-certificates.crt"},
		Certs: certs(w.pki.PublicRoot, w.pki.EnterpriseRoot)}
	switch n {
	case tools.Go:
		return tools.Tool{Name: n, Version: "go1.26.8", Flavour: tools.FlavourGo, Store: system}
	case tools.Git:
		return tools.Tool{Name: n, Version: "2.39.5", Flavour: tools.FlavourGnuTLS, Store: system}
	case tools.NPM:
		return tools.Tool{Name: n, Version: "11.19.1", Flavour: tools.FlavourNode, OpenSSL3: true,
			Store: tools.Store{Description: "Node's bundled roots", Certs: certs(w.pki.PublicRoot)}}
	case tools.Pip:
		return tools.Tool{Name: n, Version: "23.2.1", Flavour: tools.FlavourOpenSSL, OpenSSL3: true,
			Store: tools.Store{Description: "pip's certifi bundle", Files: []string{"/venv/certifi/cacert.pem"}, Certs: certs(w.pki.PublicRoot)}}
	case tools.Cargo:
		return tools.Tool{Name: n, Version: "1.95.0", Flavour: tools.FlavourOpenSSL, OpenSSL3: true, Store: system}
	case tools.Docker:
		return tools.Tool{Name: n, Version: "28.2.2", Flavour: tools.FlavourGo, Store: system}
	}
	w.t.Fatalf("no tool %s", n)
	return tools.Tool{}
}

const (
	regHost   = "registry.lab.example"
	otherHost = "git.lab.example"
)

func host(h string) tools.Host {
	return tools.Host{Host: h, Port: 443, Scheme: "https", Source: "test"}
}

// want is what a prediction must say; Fix and Note need only contain the
// given text, Steps are compared rendered.
type want struct {
	Outcome tools.Outcome
	Error   string
	Fix     []string
	Steps   []string
	Note    string
	CA      *lab.CA
}

type predictCase struct {
	name   string
	tool   tools.Tool
	host   tools.Host
	result detector.Result
	ctx    tools.Context
	want   want
}

func predictTable(w *world) []predictCase {
	p := w.pki
	sysPool := pool(p.PublicRoot, p.EnterpriseRoot)
	one := func(h string, chain []*x509.Certificate) detector.Result {
		return w.judge(w.now, sysPool, detector.Policy{}, observed(h, chain))[0]
	}
	// goproxy's forgery: a leaf signed by the root, the root sent along.
	intercepted := one(regHost, w.chain(p.EnterpriseRoot, lab.LeafOptions{}, []*x509.Certificate{p.EnterpriseRoot.Cert}, regHost))
	// A forger that sends the issuing CA but not the root above it.
	noRoot := one(regHost, w.chain(p.ClonedIntermediate, lab.LeafOptions{}, nil, regHost))
	genuine := one(regHost, w.chain(p.PublicIntermediate, lab.LeafOptions{}, nil, regHost))
	unknown := one(regHost, w.chain(p.OtherRoot, lab.LeafOptions{}, []*x509.Certificate{p.OtherRoot.Cert}, regHost))
	misnamed := one(regHost, w.chain(p.PublicIntermediate, lab.LeafOptions{}, nil, otherHost))
	ctx := tools.Context{Now: w.now, SystemBundle: "/etc/ssl/certs/ca-certificates.crt", SystemInstall: "install %s"}
	approved := ctx
	approved.Approved = []detector.SPKI{detector.SPKIOf(p.EnterpriseRoot.Cert)}
	approved.CAFile = "/tmp/corp.pem"

	// A clock two years ahead: genuine chains on two hosts all expired.
	ahead := w.now.AddDate(2, 0, 0)
	skewed := w.judge(ahead, sysPool, detector.Policy{},
		observed(regHost, w.chain(p.PublicIntermediate, lab.LeafOptions{}, nil, regHost)),
		observed(otherHost, w.chain(p.PublicIntermediate, lab.LeafOptions{}, nil, otherHost)))[0]
	skewCtx := ctx
	skewCtx.Now = ahead
	// One genuinely expired certificate, with a right clock.
	expired := one(regHost, w.chain(p.PublicIntermediate, lab.LeafOptions{NotBefore: w.now.AddDate(0, -4, 0)}, nil, regHost))

	with := func(t tools.Tool, f func(*tools.Tool)) tools.Tool { f(&t); return t }
	strictOff := &tools.Setting{Name: "strict-ssl", Value: "false", Source: "/home/u/.npmrc:3"}
	writeCA := "mitmwatch check --write-ca mitmwatch-ca.pem"
	caveat := "If CN=Example Corp Inspection Root, O=Example Corp (SPKI " + detector.SPKIOf(p.EnterpriseRoot.Cert).String() + ") is your organisation's inspection CA"
	plain := detector.Result{Obs: detector.Observation{Host: regHost, Port: 443, Failure: detector.FailureNotTLS,
		Plain: &detector.HTTPAnswer{Status: 200}}, Verdict: detector.Plaintext}

	return []predictCase{
		// The issue's situation: the inspection root is in the system
		// store, not in Node's or pip's own.
		{name: "go verifies with the system store", tool: w.tool(tools.Go), host: host(regHost), result: intercepted, ctx: ctx,
			want: want{Outcome: tools.Verifies}},
		{name: "git verifies with the system store", tool: w.tool(tools.Git), host: host(regHost), result: intercepted, ctx: ctx,
			want: want{Outcome: tools.Verifies}},
		{name: "npm fails: the root is not among Node's", tool: w.tool(tools.NPM), host: host(regHost), result: intercepted, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain",
				Fix:   []string{caveat, "add the CA to Node's roots"},
				Steps: []string{writeCA, "export NODE_EXTRA_CA_CERTS=mitmwatch-ca.pem"}, CA: p.EnterpriseRoot}},
		{name: "pip fails: the root is not in certifi; the system bundle holds it", tool: w.tool(tools.Pip), host: host(regHost), result: intercepted, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain",
				Steps: []string{writeCA, "pip config set global.cert /etc/ssl/certs/ca-certificates.crt"}, CA: p.EnterpriseRoot}},
		{name: "an approved CA needs no caveat, and the written file is used", tool: w.tool(tools.NPM), host: host(regHost), result: intercepted, ctx: approved,
			want: want{Outcome: tools.Fails, Error: "SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain",
				Fix:   []string{"Add the CA to Node's roots (npm, and every script it runs): export NODE_EXTRA_CA_CERTS=/tmp/corp.pem"},
				Steps: []string{"export NODE_EXTRA_CA_CERTS=/tmp/corp.pem"}, CA: p.EnterpriseRoot}},
		{name: "pip with an approved CA the system bundle lacks gets a bundle of its own", tool: w.tool(tools.Pip), host: host(regHost),
			result: w.judge(w.now, pool(p.PublicRoot), detector.Policy{}, observed(regHost, intercepted.Obs.TLS.Chain))[0], ctx: approved,
			want: want{Outcome: tools.Fails, Error: "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain",
				Steps: []string{"cat /venv/certifi/cacert.pem /tmp/corp.pem > /tmp/corp-pip-bundle.pem", "pip config set global.cert /tmp/corp-pip-bundle.pem"}, CA: p.EnterpriseRoot}},
		{name: "npm without the root sent", tool: w.tool(tools.NPM), host: host(regHost), result: noRoot, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unable to get local issuer certificate",
				Steps: []string{writeCA, "export NODE_EXTRA_CA_CERTS=mitmwatch-ca.pem"}, CA: p.EnterpriseRoot}},
		{name: "git with GIT_SSL_CAINFO gets a bundle", tool: with(w.tool(tools.Git), func(t *tools.Tool) {
			t.Store = tools.Store{Description: "GIT_SSL_CAINFO", Files: []string{"/corp/git.pem"}, Certs: certs(p.PublicRoot),
				By: &tools.Setting{Name: "GIT_SSL_CAINFO", Value: "/corp/git.pem", Source: "environment"}}
		}), host: host(regHost), result: intercepted, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "server certificate verification failed. CAfile: /corp/git.pem CRLfile: none",
				Steps: []string{writeCA, "export GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt"}, CA: p.EnterpriseRoot}},
		{name: "git gets the CA for the host only", tool: with(w.tool(tools.Git), func(t *tools.Tool) {
			t.Store.Certs = certs(p.PublicRoot)
		}), host: host(regHost), result: intercepted, ctx: approved,
			want: want{Outcome: tools.Fails, Error: "server certificate verification failed. CAfile: none CRLfile: none",
				Steps: []string{"git config --global http.https://registry.lab.example/.sslCAInfo /tmp/corp.pem"}, CA: p.EnterpriseRoot}},
		{name: "a chain nobody here trusts gets no CA", tool: w.tool(tools.Go), host: host(regHost), result: unknown, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "tls: failed to verify certificate: x509: certificate signed by unknown authority",
				Fix: []string{"Nothing on this machine vouches for the CA that signs this chain (CN=Lab Other Root G2", "do not install it"}}},
		{name: "cargo with an approved CA the system store lacks", tool: with(w.tool(tools.Cargo), func(t *tools.Tool) {
			t.Store.Certs = certs(p.PublicRoot)
		}), host: host(regHost), result: w.judge(w.now, pool(p.PublicRoot), detector.Policy{}, observed(regHost, intercepted.Obs.TLS.Chain))[0], ctx: approved,
			want: want{Outcome: tools.Fails, Error: "[60] SSL peer certificate or SSH remote key was not OK (SSL certificate problem: self-signed certificate in certificate chain)",
				Steps: []string{"install /tmp/corp.pem"}, CA: p.EnterpriseRoot}},
		{name: "docker gets a certs.d entry", tool: with(w.tool(tools.Docker), func(t *tools.Tool) {
			t.Store.Certs = certs(p.PublicRoot)
		}), host: tools.Host{Host: regHost, Port: 5000, Scheme: "https"}, result: intercepted, ctx: approved,
			want: want{Outcome: tools.Fails, Error: "tls: failed to verify certificate: x509: certificate signed by unknown authority",
				Steps: []string{"mkdir -p /etc/docker/certs.d/registry.lab.example:5000 && cp /tmp/corp.pem /etc/docker/certs.d/registry.lab.example:5000/ca.crt"}, CA: p.EnterpriseRoot}},

		// Verification switched off.
		{name: "strict-ssl=false, the chain would fail", tool: with(w.tool(tools.NPM), func(t *tools.Tool) { t.Verify = strictOff }),
			host: host(regHost), result: intercepted, ctx: approved,
			want: want{Outcome: tools.VerificationOff, Fix: []string{"npm accepts any certificate from registry.lab.example while strict-ssl=false (/home/u/.npmrc:3) is set"},
				Steps: []string{"remove strict-ssl from /home/u/.npmrc:3", "export NODE_EXTRA_CA_CERTS=/tmp/corp.pem"}, CA: p.EnterpriseRoot}},
		{name: "strict-ssl=false, the chain would verify", tool: with(w.tool(tools.NPM), func(t *tools.Tool) { t.Verify = strictOff }),
			host: host(regHost), result: genuine, ctx: ctx,
			want: want{Outcome: tools.VerificationOff, Fix: []string{"The chain verifies against Node's bundled roots without it, so removing it is all"},
				Steps: []string{"remove strict-ssl from /home/u/.npmrc:3"}}},
		{name: "NODE_TLS_REJECT_UNAUTHORIZED is unset", tool: with(w.tool(tools.NPM), func(t *tools.Tool) {
			t.Verify = &tools.Setting{Name: "NODE_TLS_REJECT_UNAUTHORIZED", Value: "0", Source: "environment"}
		}), host: host(regHost), result: genuine, ctx: ctx,
			want: want{Outcome: tools.VerificationOff, Steps: []string{"unset NODE_TLS_REJECT_UNAUTHORIZED"}}},
		{name: "git's sslVerify=false for one host only", tool: with(w.tool(tools.Git), func(t *tools.Tool) {
			t.Overrides = []tools.Override{{Pattern: otherHost, Port: 443, Off: &tools.Setting{Name: "http.https://git.lab.example/.sslVerify", Value: "false", Source: "/home/u/.gitconfig:2"}}}
		}), host: host(regHost), result: genuine, ctx: ctx, want: want{Outcome: tools.Verifies}},
		{name: "git's per-host sslCAInfo holds the CA", tool: with(w.tool(tools.Git), func(t *tools.Tool) {
			t.Store.Certs = certs(p.PublicRoot)
			t.Overrides = []tools.Override{{Pattern: regHost, Store: &tools.Store{Description: "corp", Certs: certs(p.EnterpriseRoot)}}}
		}), host: host(regHost), result: intercepted, ctx: ctx, want: want{Outcome: tools.Verifies}},
		{name: "pip's trusted-host", tool: with(w.tool(tools.Pip), func(t *tools.Tool) {
			t.Overrides = []tools.Override{{Pattern: regHost, Off: &tools.Setting{Name: "global.trusted-host", Value: regHost, Source: "/etc/pip.conf:4"}}}
		}), host: host(regHost), result: intercepted, ctx: ctx,
			want: want{Outcome: tools.VerificationOff, Steps: []string{"remove global.trusted-host from /etc/pip.conf:4", writeCA, "pip config set global.cert /etc/ssl/certs/ca-certificates.crt"}, CA: p.EnterpriseRoot}},
		{name: "docker's insecure-registries", tool: with(w.tool(tools.Docker), func(t *tools.Tool) {
			t.Overrides = []tools.Override{{Pattern: regHost, Port: 443, Plain: true, Off: &tools.Setting{Name: "insecure-registries", Value: regHost, Source: "/etc/docker/daemon.json:2"}}}
		}), host: host(regHost), result: genuine, ctx: ctx,
			want: want{Outcome: tools.VerificationOff, Steps: []string{"remove insecure-registries from /etc/docker/daemon.json:2"}}},

		// Plain HTTP: the case this project started from.
		{name: "a GOPROXY over http", tool: w.tool(tools.Go), host: tools.Host{Host: regHost, Port: 80, Scheme: "http", Source: "GOPROXY (environment)"},
			result: detector.Result{Obs: detector.Observation{Host: regHost, Port: 80}}, ctx: ctx,
			want: want{Outcome: tools.PlainHTTP, Fix: []string{"Serve registry.lab.example over https with a certificate from an internal CA"},
				Steps: []string{"issue registry.lab.example a certificate from your internal CA (its certificate saved as internal-ca.pem) and serve it over https",
					"install internal-ca.pem", "write registry.lab.example as https:// in GOPROXY (environment)"}}},
		{name: "a private module host that answers plain HTTP", tool: w.tool(tools.Go), host: tools.Host{Host: regHost, Port: 443, Scheme: "https", Source: "GOPRIVATE (environment)"},
			result: plain, ctx: ctx, want: want{Outcome: tools.PlainHTTP, Error: "no secure protocol found for repository"}},
		{name: "GOINSECURE lets go fetch it in clear text", tool: with(w.tool(tools.Go), func(t *tools.Tool) {
			t.Overrides = []tools.Override{{Pattern: "*.lab.example", Plain: true, Off: &tools.Setting{Name: "GOINSECURE", Value: "*.lab.example", Source: "/home/u/.config/go/env:1"}}}
		}), host: tools.Host{Host: regHost, Port: 443, Scheme: "https", Source: "GOPRIVATE (environment)"}, result: plain, ctx: ctx,
			want: want{Outcome: tools.PlainHTTP, Steps: []string{
				"issue registry.lab.example a certificate from your internal CA (its certificate saved as internal-ca.pem) and serve it over https",
				"install internal-ca.pem", "go env -u GOINSECURE"}}},
		{name: "npm meets plain HTTP on the TLS port", tool: w.tool(tools.NPM), host: host(regHost), result: plain, ctx: ctx,
			want: want{Outcome: tools.PlainHTTP, Error: "ERR_SSL_WRONG_VERSION_NUMBER: wrong version number"}},

		// Causes that are not about trust.
		{name: "npm and a certificate for another name", tool: w.tool(tools.NPM), host: host(regHost), result: misnamed, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: Host: registry.lab.example. is not in the cert's altnames: DNS:git.lab.example",
				Fix: []string{"The certificate is for git.lab.example, not registry.lab.example"}}},
		{name: "pip and a certificate for another name", tool: w.tool(tools.Pip), host: host(regHost), result: misnamed, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not valid for 'registry.lab.example'."}},
		{name: "git and a certificate for another name", tool: w.tool(tools.Git), host: host(regHost), result: misnamed, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "SSL: certificate subject name (git.lab.example) does not match target host name 'registry.lab.example'"}},
		{name: "go and a certificate for another name", tool: w.tool(tools.Go), host: host(regHost), result: misnamed, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "tls: failed to verify certificate: x509: certificate is valid for git.lab.example, not registry.lab.example"}},
		{name: "a clock two years ahead: npm", tool: w.tool(tools.NPM), host: host(regHost), result: skewed, ctx: skewCtx,
			want: want{Outcome: tools.Fails, Error: "CERT_HAS_EXPIRED: certificate has expired",
				Fix: []string{"This machine's clock is wrong (see clock-skew)"}, Steps: []string{"timedatectl set-ntp true"}}},
		{name: "a clock two years ahead: pip", tool: w.tool(tools.Pip), host: host(regHost), result: skewed, ctx: skewCtx,
			want: want{Outcome: tools.Fails, Error: "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired",
				Steps: []string{"timedatectl set-ntp true"}}},
		{name: "a certificate really expired", tool: w.tool(tools.Git), host: host(regHost), result: expired, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "server certificate verification failed. CAfile: none CRLfile: none",
				Fix: []string{"its operator must replace it"}}},
		{name: "no handshake, no chain to judge", tool: w.tool(tools.Go), host: host(regHost),
			result: detector.Result{Obs: detector.Observation{Host: regHost, Port: 443, Failure: detector.FailureRefused}, Verdict: detector.Unreachable}, ctx: ctx,
			want: want{Outcome: tools.Unreachable, Note: "connection_refused"}},
		{name: "a cert setting naming a missing file", tool: with(w.tool(tools.Pip), func(t *tools.Tool) {
			t.Store = tools.Store{Description: "pip's cert /gone.pem", Err: "PEM bundle /gone.pem: no such file or directory",
				By: &tools.Setting{Name: "global.cert", Value: "/gone.pem", Source: "/etc/pip.conf:2"}}
		}), host: host(regHost), result: genuine, ctx: ctx,
			want: want{Outcome: tools.Fails, Error: "PEM bundle /gone.pem: no such file or directory", Fix: []string{"pip cannot load global.cert=/gone.pem"}}},
		{name: "the tool's proxy is not the probe's path", tool: with(w.tool(tools.Go), func(t *tools.Tool) {
			t.Proxy = &tools.Setting{Name: "HTTPS_PROXY", Value: "http://proxy.lab.example:3128", Source: "environment"}
		}), host: host(regHost), result: genuine, ctx: ctx,
			want: want{Outcome: tools.Verifies, Note: "go goes through proxy proxy.lab.example:3128 (environment), the probe went direct"}},
		{name: "a tool not installed is predicted from its configuration", tool: with(w.tool(tools.Cargo), func(t *tools.Tool) { t.Version = "" }),
			host: host(regHost), result: genuine, ctx: ctx, want: want{Outcome: tools.Verifies, Note: "cargo is not installed here"}},
	}
}

func TestPredict(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, c := range predictTable(w) {
		t.Run(c.name, func(t *testing.T) {
			p := tools.Predict(c.tool, c.host, c.result, c.ctx)
			if p.Outcome != c.want.Outcome || p.Error != c.want.Error {
				t.Errorf("outcome %s, error %q; want %s, %q\nfix: %s", p.Outcome, p.Error, c.want.Outcome, c.want.Error, p.Fix)
			}
			for _, f := range c.want.Fix {
				if !strings.Contains(p.Fix, f) {
					t.Errorf("fix %q lacks %q", p.Fix, f)
				}
			}
			if c.want.Steps != nil {
				var got []string
				for _, s := range p.Steps {
					got = append(got, s.String())
				}
				if d := cmp.Diff(c.want.Steps, got); d != "" {
					t.Errorf("steps (-want +got):\n%s", d)
				}
			}
			if c.want.Note != "" && !strings.Contains(p.Note, c.want.Note) {
				t.Errorf("note %q lacks %q", p.Note, c.want.Note)
			}
			switch {
			case c.want.CA == nil && p.CA != nil:
				t.Errorf("installs CA %s, want none", p.CA.Subject)
			case c.want.CA != nil && (p.CA == nil || !p.CA.Equal(c.want.CA.Cert)):
				t.Errorf("installs CA %v, want %s", p.CA, c.want.CA.Cert.Subject)
			}
			if (p.Outcome == tools.Fails || p.Outcome == tools.VerificationOff || p.Outcome == tools.PlainHTTP) && p.Fix == "" {
				t.Error("no fix")
			}
		})
	}
}

// TestEveryOutcomeIsPredicted keeps the table exhaustive.
func TestEveryOutcomeIsPredicted(t *testing.T) {
	t.Parallel()
	seen := map[tools.Outcome]bool{}
	for _, c := range predictTable(newWorld(t)) {
		seen[c.want.Outcome] = true
	}
	for _, o := range tools.Outcomes {
		if !seen[o] {
			t.Errorf("no case predicts %s", o)
		}
	}
}
