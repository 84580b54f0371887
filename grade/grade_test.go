package grade

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/trust"
)

// env is a lab PKI with an interceptor CA (the enterprise root) this
// machine trusts, and test hosts whose certificates are broken.
type env struct {
	t              *testing.T
	pki            *lab.PKI
	public, system *x509.CertPool
	ca             *lab.CA
	f              Found // the interceptor: the enterprise root, on the direct path
}

var (
	direct = detector.Path{Kind: detector.PathDirect}
	proxy  = detector.Path{Kind: detector.PathProxy, Proxy: "proxy.lab.example:3128"}
)

func newEnv(t *testing.T) *env {
	t.Helper()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pki: pki, public: pki.PublicPool(), system: pki.SystemPool(), ca: pki.EnterpriseRoot}
	e.f = Found{Key: Key{SPKI: detector.SPKIOf(e.ca.Cert), Path: direct}, CA: e.ca.Cert}
	return e
}

// issue makes a chain for host from ca with opts.
func (e *env) issue(ca *lab.CA, opts lab.LeafOptions, names ...string) []*x509.Certificate {
	e.t.Helper()
	c, err := ca.Issue(opts, names...)
	if err != nil {
		e.t.Fatal(err)
	}
	return parse(e.t, c)
}

func parse(t *testing.T, c *tls.Certificate) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// broken is the test host's own chain with the defect.
func (e *env) broken(d lab.Defect, host string) []*x509.Certificate {
	e.t.Helper()
	c, err := e.pki.Broken(d, host)
	if err != nil {
		e.t.Fatal(err)
	}
	return parse(e.t, c)
}

// signedBy makes a certificate for subject whose key is key, signed by
// signer (a self-signed one when signer is nil): squid's "Not trusted by"
// CA and its self-signed mimic carry the CA's key.
func (e *env) signedBy(subject string, isCA bool, pub crypto.PublicKey, signer *x509.Certificate, key crypto.Signer, dns ...string) *x509.Certificate {
	e.t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: subject}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * day),
		IsCA: isCA, BasicConstraintsValid: true, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	parent := signer
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// done is a completed handshake to host on path presenting chain, verified
// as probe verifies it, with the answer to the request.
func (e *env) done(host string, path detector.Path, chain []*x509.Certificate, ans *detector.HTTPAnswer) *Attempt {
	st := &detector.TLSState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, Chain: chain,
		NameMatch: chain[0].VerifyHostname(host) == nil,
		Public:    trust.Verify(chain, e.public, time.Now()), System: trust.Verify(chain, e.system, time.Now())}
	a := &Attempt{Obs: detector.Observation{Host: host, Port: 443, Path: path, TLS: st}, Answer: ans}
	if ans == nil {
		a.AnswerFailure = detector.FailureEOF
	}
	return a
}

func failed(host string, path detector.Path, f detector.Failure, plain *detector.HTTPAnswer) *Attempt {
	return &Attempt{Obs: detector.Observation{Host: host, Port: 443, Path: path, Failure: f, FailureDetail: "lab", Plain: plain}}
}

var (
	ok200      = &detector.HTTPAnswer{Status: 200, BodySnippet: "ok"}
	gateway502 = &detector.HTTPAnswer{Status: 502, Title: "502 Bad Gateway", BodySnippet: "Certificate verify failed: certificate has expired"}
	squid503   = &detector.HTTPAnswer{Status: 503, Title: "ERROR: The requested URL could not be retrieved",
		ProxyHeaders: []string{"X-Squid-Error: ERR_SECURE_CONNECT_FAIL 0"}}
	squidDenied = &detector.HTTPAnswer{Status: 200, ProxyHeaders: []string{"X-Squid-Error: ERR_ACCESS_DENIED 0"}}
	forbidden   = &detector.HTTPAnswer{Status: 403, Title: "Access Denied"}
)

const host = "expired.grade.example"

// TestUpstream: what reached the client from a test host whose
// certificate is broken, with and without a control that shows the
// interceptor intercepts the test hosts' domain.
func TestUpstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ca := e.ca
	forged := e.issue(ca, lab.LeafOptions{}, host)
	forgedCAKey := e.issue(ca, lab.LeafOptions{Key: ca.Key}, host) // mitmproxy and squid: the leaf's key is the CA's
	mimicExpired := e.issue(ca, lab.LeafOptions{NotBefore: time.Now().Add(-100 * day), Validity: 90 * day}, host)
	mimicName := e.issue(ca, lab.LeafOptions{}, lab.WrongHostName)
	notTrustedBy := e.signedBy(`Not trusted by "Example Corp Inspection Root"`, true, ca.Key.Public(), nil, ca.Key)
	mimicUntrusted := e.signedBy(host, false, ca.Key.Public(), notTrustedBy, ca.Key, host)
	mimicSelfSigned := e.signedBy(host, false, ca.Key.Public(), nil, ca.Key, host)
	valid := e.issue(e.pki.PublicIntermediate, lab.LeafOptions{}, host)
	controlChain := e.issue(ca, lab.LeafOptions{}, "control.grade.example")
	controlOwn := e.issue(e.pki.PublicIntermediate, lab.LeafOptions{}, "control.grade.example")

	intercepted := e.done("control.grade.example", direct, controlChain, ok200)
	letBy := e.done("control.grade.example", direct, controlOwn, ok200)
	for _, c := range []struct {
		name    string
		a       *Attempt
		control *Attempt
		want    Result
		detail  string
	}{
		{"trusted forged leaf, host answers", e.done(host, direct, forged, ok200), intercepted, ReSigned, "passed the host's answer through (HTTP 200)"},
		{"trusted forged leaf with the CA's key, host answers", e.done(host, direct, forgedCAKey, ok200), nil, ReSigned, "forged a leaf this machine trusts"},
		{"trusted forged leaf, then a 502 (mitmproxy)", e.done(host, direct, forged, gateway502), intercepted, Blocked, "its own error: HTTP 502"},
		{"trusted forged leaf, then squid's error page", e.done(host, direct, forged, squid503), intercepted, Blocked, "HTTP 503"},
		{"trusted forged leaf, then squid's error header on a 200", e.done(host, direct, forged, squidDenied), intercepted, Blocked, "own error"},
		{"trusted forged leaf, then a block page", e.done(host, direct, forged, forbidden), intercepted, Blocked, `"Access Denied"`},
		{"trusted forged leaf, then nothing", e.done(host, direct, forged, nil), intercepted, Blocked, "answered nothing (eof_error)"},
		{"forged leaf that keeps the expiry", e.done(host, direct, mimicExpired, ok200), intercepted, Mimicked, "ssl_expired_certificate"},
		{"forged leaf for the upstream's other name", e.done(host, direct, mimicName, ok200), intercepted, Mimicked, "not valid for " + host + " (it names " + lab.WrongHostName + ")"},
		{"forged leaf from a CA of another name with the CA's key (squid)", e.done(host, direct, []*x509.Certificate{mimicUntrusted}, ok200), intercepted, Mimicked, "ssl_unknown_authority"},
		{"self-signed mimic with the CA's key (squid)", e.done(host, direct, []*x509.Certificate{mimicSelfSigned}, ok200), intercepted, Mimicked, "ssl_unknown_authority"},
		{"the host's own chain, control intercepted", e.done(host, direct, e.broken(lab.DefectSelfSigned, host), ok200), intercepted, PassedThrough, "the client sees the defect"},
		{"the host's own chain, control let by", e.done(host, direct, e.broken(lab.DefectUntrustedRoot, host), ok200), letBy, NotIntercepted, "lets this domain by"},
		{"the host's own chain, no control", e.done(host, direct, e.broken(lab.DefectExpired, host), ok200), nil, NotIntercepted, "without a control host"},
		{"a valid chain tests nothing", e.done(host, direct, valid, ok200), intercepted, NotIntercepted, "not broken, so it tests nothing"},
		{"alert, control intercepted", failed(host, direct, detector.FailureTLSAlert, nil), intercepted, Blocked, "refused: ssl_alert"},
		{"reset, no control", failed(host, direct, detector.FailureReset, nil), nil, Blocked, "connection_reset"},
		{"alert, control let by", failed(host, direct, detector.FailureTLSAlert, nil), letBy, NotIntercepted, "control host was not intercepted either"},
		{"alert, control failed too", failed(host, direct, detector.FailureTLSAlert, nil), failed("control.grade.example", direct, detector.FailureTimeout, nil), NotIntercepted, "not intercepted either"},
		{"CONNECT refused", failed(host, direct, detector.FailureProxy, forbidden), intercepted, Blocked, `HTTP 403 "Access Denied"`},
		{"timeout", failed(host, direct, detector.FailureTimeout, nil), intercepted, NotIntercepted, "could not be reached"},
		{"unresolvable", failed(host, direct, detector.FailureDNS, nil), intercepted, NotIntercepted, "dns_lookup_error"},
		{"another path", e.done(host, proxy, forged, ok200), intercepted, NotIntercepted, "another path (proxy proxy.lab.example:3128)"},
		{"not probed", nil, intercepted, NotIntercepted, "not probed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := e.f.upstream(Probe{Check: "upstream-expired", Attempt: c.a}, c.control)
			if got.Name != "upstream-expired" || got.Result != c.want || !strings.Contains(got.Detail, c.detail) {
				t.Errorf("got %s %s: %s\nwant %s, detail with %q", got.Name, got.Result, got.Detail, c.want, c.detail)
			}
		})
	}
}

func TestClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := "github.com"
	forged := e.issue(e.ca, lab.LeafOptions{}, target)
	other := e.issue(e.pki.PublicIntermediate, lab.LeafOptions{}, target)
	tls10 := func(a *Attempt) *Attempt {
		a.Obs.TLS.Version, a.Obs.TLS.CipherSuite = tls.VersionTLS10, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
		return a
	}
	for _, c := range []struct {
		name   string
		a      *Attempt
		want   Result
		detail string
	}{
		{"accepted", tls10(e.done(target, direct, forged, nil)), Accepted, "negotiated TLS 1.0 with TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
		{"closed (mitmproxy)", failed(target, direct, detector.FailureEOF, nil), Refused, "eof_error"},
		{"alert (squid)", failed(target, direct, detector.FailureTLSAlert, nil), Refused, "ssl_alert"},
		{"no shared version", failed(target, direct, detector.FailureProtocolVersion, nil), Refused, "ssl_protocol_version"},
		{"timeout", failed(target, direct, detector.FailureTimeout, nil), Inconclusive, "no answer"},
		{"someone else's chain", tls10(e.done(target, direct, other, nil)), Inconclusive, "something other than the interceptor"},
		{"another path", tls10(e.done(target, proxy, forged, nil)), Inconclusive, "another path"},
		{"not probed", nil, Inconclusive, "not probed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := e.f.client(ClientChecks[0], c.a)
			if got.Name != CheckTLS10 || got.Result != c.want || !strings.Contains(got.Detail, c.detail) {
				t.Errorf("got %s %s: %s\nwant %s, detail with %q", got.Name, got.Result, got.Detail, c.want, c.detail)
			}
		})
	}
}

func TestLeafChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shared := e.ca.Key // mitmproxy and squid: the CA's own key
	now := time.Now()
	leaf := func(host string, opts lab.LeafOptions) Leaf {
		return Leaf{Host: host, Cert: e.issue(e.ca, opts, host)[0]}
	}
	perHost := []Leaf{leaf("a.lab.example", lab.LeafOptions{}), leaf("b.lab.example", lab.LeafOptions{})}
	caKey := []Leaf{leaf("a.lab.example", lab.LeafOptions{Key: shared}), leaf("b.lab.example", lab.LeafOptions{Key: shared})}
	oneKey := []Leaf{leaf("a.lab.example", lab.LeafOptions{Key: e.pki.OtherRoot.Key}), leaf("b.lab.example", lab.LeafOptions{Key: e.pki.OtherRoot.Key})}
	// 367 days from two days ago, as mitmproxy forges.
	long := []Leaf{leaf("a.lab.example", lab.LeafOptions{NotBefore: now.Add(-2 * day), Validity: 367 * day})}
	// The same in 2021, when public certificates could live 398 days.
	long2021 := []Leaf{leaf("a.lab.example", lab.LeafOptions{NotBefore: time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC), Validity: 367 * day})}
	sha1 := *perHost[0].Cert
	sha1.SignatureAlgorithm = x509.SHA1WithRSA
	small := *perHost[1].Cert
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	small.PublicKey = &weakKey.PublicKey

	for _, c := range []struct {
		name       string
		valid, all []Leaf
		want       map[string]Result
		detail     string
	}{
		{"a key per host, short-lived", perHost, perHost,
			map[string]Result{CheckSignature: Sound, CheckKey: Sound, CheckValidity: Sound, CheckKeyReuse: Sound}, "ECDSA-SHA256"},
		{"the CA's own key for every host", caKey, caKey,
			map[string]Result{CheckSignature: Sound, CheckKey: Sound, CheckValidity: Sound, CheckKeyReuse: Weak}, "the CA's own key"},
		{"one key for every host", oneKey, oneKey,
			map[string]Result{CheckSignature: Sound, CheckKey: Sound, CheckValidity: Sound, CheckKeyReuse: Weak}, "one key (SPKI"},
		{"longer than a public certificate now", long, long,
			map[string]Result{CheckSignature: Sound, CheckKey: Sound, CheckValidity: Weak, CheckKeyReuse: Inconclusive}, "valid for 367 days, longer than a publicly trusted certificate"},
		{"within the public limit of 2021", long2021, long2021,
			map[string]Result{CheckSignature: Sound, CheckKey: Sound, CheckValidity: Sound, CheckKeyReuse: Inconclusive}, "367 days"},
		{"SHA-1 and RSA 1024", perHost, []Leaf{{"a.lab.example", &sha1}, {"b.lab.example", &small}},
			map[string]Result{CheckSignature: Weak, CheckKey: Weak, CheckValidity: Sound, CheckKeyReuse: Sound}, "RSA 1024"},
		{"only test hosts' leaves", nil, perHost,
			map[string]Result{CheckSignature: Sound, CheckKey: Sound, CheckValidity: Inconclusive, CheckKeyReuse: Sound}, "no forged leaf of a host with a valid certificate"},
		{"none", nil, nil,
			map[string]Result{CheckSignature: Inconclusive, CheckKey: Inconclusive, CheckValidity: Inconclusive, CheckKeyReuse: Inconclusive}, "no forged leaf was seen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			checks := e.f.leafChecks(c.valid, c.all)
			got := map[string]Result{}
			var details []string
			for _, ch := range checks {
				got[ch.Name] = ch.Result
				details = append(details, ch.Detail)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s\n%s", diff, strings.Join(details, "\n"))
			}
			if !strings.Contains(strings.Join(details, "\n"), c.detail) {
				t.Errorf("no detail says %q:\n%s", c.detail, strings.Join(details, "\n"))
			}
		})
	}
}

func TestPublicLifetime(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		at   time.Time
		want time.Duration
	}{
		{time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), 825 * day},
		{time.Date(2020, 9, 1, 0, 0, 0, 0, time.UTC), 398 * day},
		{time.Date(2026, 3, 14, 23, 59, 0, 0, time.UTC), 398 * day},
		{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 200 * day},
		{time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), 100 * day},
		{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 47 * day},
	} {
		if got := publicLifetime(c.at); got != c.want {
			t.Errorf("publicLifetime(%s) = %s, want %s", c.at, got, c.want)
		}
	}
}

// TestRate is the rubric as a table: checks in, grade out.
func TestRate(t *testing.T) {
	t.Parallel()
	up := func(key string, r Result) Check { return Check{Name: UpstreamPrefix + key, Result: r} }
	validates := []Check{up("expired", Blocked), up("self-signed", Mimicked), up("untrusted-root", PassedThrough), up("wrong-host", Blocked)}
	with := func(cs ...Check) []Check { return append(append([]Check{}, validates...), cs...) }
	for _, c := range []struct {
		name   string
		checks []Check
		want   Grade
	}{
		{"validates upstream, modern TLS, sound leaves", with(Check{CheckTLS10, Refused, ""}, Check{CheckKeyReuse, Sound, ""}), A},
		{"inconclusive client checks lower nothing", with(Check{CheckTLS10, Inconclusive, ""}), A},
		{"no forward secrecy", with(Check{CheckNoForwardSecrecy, Accepted, ""}), B},
		{"one key for every host", with(Check{CheckKeyReuse, Weak, ""}), B},
		{"long-lived leaves", with(Check{CheckValidity, Weak, ""}), B},
		{"TLS 1.0", with(Check{CheckTLS10, Accepted, ""}, Check{CheckKeyReuse, Weak, ""}), C},
		{"TLS 1.1", with(Check{CheckTLS11, Accepted, ""}), C},
		{"RC4 or 3DES", with(Check{CheckWeakCiphers, Accepted, ""}, Check{CheckTLS10, Accepted, ""}), D},
		{"SHA-1 leaves", with(Check{CheckSignature, Weak, ""}), D},
		{"weak leaf keys", with(Check{CheckKey, Weak, ""}), D},
		{"re-signs one test host", with(up("wrong-host", ReSigned)), F},
		{"re-signs, even when another test host was not intercepted", []Check{up("expired", ReSigned), up("self-signed", NotIntercepted)}, F},
		{"one test host not intercepted", with(up("revoked", NotIntercepted)), Incomplete},
		{"no test host at all", []Check{{CheckTLS10, Refused, ""}}, Incomplete},
	} {
		if got := Rate(c.checks); got != c.want {
			t.Errorf("%s: Rate = %s, want %s", c.name, got, c.want)
		}
	}
}

// TestRubricCoversEveryCheck: every check the package makes and every
// rubric row name each other.
func TestRubricCoversEveryCheck(t *testing.T) {
	t.Parallel()
	names := map[string]bool{UpstreamPrefix: true, CheckSignature: true, CheckKey: true, CheckValidity: true, CheckKeyReuse: true}
	for _, cc := range ClientChecks {
		names[cc.Name] = true
	}
	rows := map[string]bool{}
	for _, r := range Rows() {
		rows[r.Check] = true
		if !names[r.Check] {
			t.Errorf("rubric row for unknown check %q", r.Check)
		}
		if r.Cap == A || r.Cap == Incomplete || r.Why == "" {
			t.Errorf("rubric row %+v: a row lowers the grade and says why", r)
		}
	}
	for n := range names {
		if !rows[n] {
			t.Errorf("check %q has no rubric row", n)
		}
	}
}

// TestREADMERubric keeps the rubric README.md prints in step with the code.
func TestREADMERubric(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Rows() {
		c := r.Check
		if strings.HasSuffix(c, "-") {
			c += "*"
		}
		row := fmt.Sprintf("| `%s` | `%s` | %s | %s |", c, r.Result, r.Cap, r.Why)
		if !strings.Contains(string(b), row) {
			t.Errorf("README.md lacks the rubric row\n%s", row)
		}
	}
}
