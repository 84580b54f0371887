package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/lab"
)

// get requests path from h and returns the status and body.
func get(t *testing.T, h http.Handler, method, path string) (int, string, http.Header) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body), w.Result().Header
}

// Ready waits for the first round; reloads are POST only, a bad config is
// reported while the last good one keeps probing, and a good one recovers.
func TestReadinessAndReload(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	fast, held, added := l.target("fast.lab.example", 1), l.target("held.lab.example", 2), l.target("added.lab.example", 3)
	for _, tg := range []string{fast.Address, held.Address, added.Address} {
		l.router.route(tg, l.env.Origin.Addr())
	}
	release := l.router.hold(held.Address)
	defer release()
	// The held dial ends only at the timeout: make it far beyond the test.
	ld := &loader{cfg: l.config(200*time.Millisecond, wait, fast, held)}
	d, _ := l.daemon(t, ld, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := d.Handler(func() error { return d.Reload(ctx) })

	for _, path := range []string{"/-/ready", "/-/healthy"} {
		if code, _, _ := get(t, h, "GET", path); code != http.StatusServiceUnavailable {
			t.Errorf("%s before Run: %d, want 503", path, code)
		}
	}
	run(t, d)
	waitFor(t, d, wait, "the fast target probed", probedAtLeast(d, fast.Key(), 1))
	if d.Ready() {
		t.Fatal("ready while a target of the first round is still being probed")
	}
	if code, _, _ := get(t, h, "GET", "/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/-/ready during the first round: %d, want 503", code)
	}
	if code, _, _ := get(t, h, "GET", "/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy while running: %d, want 200", code)
	}
	release()
	waitFor(t, d, wait, "ready", d.Ready)
	if code, _, _ := get(t, h, "GET", "/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready after the first round: %d, want 200", code)
	}

	if code, _, hdr := get(t, h, "GET", "/-/reload"); code != http.StatusMethodNotAllowed || hdr.Get("Allow") == "" {
		t.Errorf("GET /-/reload: %d (Allow %q), want 405 naming POST", code, hdr.Get("Allow"))
	}
	ld.set(l.config(200*time.Millisecond, 2*time.Second, fast, added), nil)
	if code, body, _ := get(t, h, "POST", "/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload with a good config: %d %s", code, body)
	}
	waitFor(t, d, wait, "the added target probed", probedAtLeast(d, added.Key(), 1))
	if _, ok := rec(d, held.Key()); ok {
		t.Error("a removed target is still reported")
	}

	bad := badConfig(t)
	ld.set(nil, bad)
	code, body, _ := get(t, h, "POST", "/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, "interval") {
		t.Errorf("POST /-/reload with a bad config: %d %q, want 500 with the error", code, body)
	}
	if d.Snapshot().ConfigLoaded {
		t.Error("ConfigLoaded after a failed reload")
	}
	r, _ := rec(d, fast.Key())
	waitFor(t, d, wait, "probes to go on with the old config", probedAtLeast(d, fast.Key(), r.Probes+2))
	if _, page, _ := get(t, h, "GET", "/"); !strings.Contains(page, "The last reload failed") {
		t.Error("the status page does not say the reload failed")
	}

	ld.set(l.config(200*time.Millisecond, 2*time.Second, fast, added), nil)
	if code, body, _ := get(t, h, "POST", "/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload after fixing the config: %d %s", code, body)
	}
	if !d.Snapshot().ConfigLoaded {
		t.Error("ConfigLoaded false after a good reload")
	}
}

// Without a reload function (no --web.enable-lifecycle) /-/reload changes
// nothing; with one, a cross-origin browser request is still refused.
func TestReloadNeedsLifecycle(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ld := &loader{cfg: l.config(time.Second, wait)}
	d, _ := l.daemon(t, ld, "")
	if code, _, _ := get(t, d.Handler(nil), "POST", "/-/reload"); code != http.StatusForbidden {
		t.Errorf("POST /-/reload without lifecycle: %d, want 403", code)
	}
	if n := ld.calls(); n != 0 {
		t.Errorf("the config was loaded %d times by refused reloads", n)
	}
	reloads := 0
	h := d.Handler(func() error { reloads++; return nil })
	req := httptest.NewRequest("POST", "/-/reload", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || reloads != 0 {
		t.Errorf("cross-site POST /-/reload: %d, %d reloads; want 403 and none", w.Code, reloads)
	}
	if code, _, _ := get(t, h, "POST", "/-/reload"); code != http.StatusOK || reloads != 1 {
		t.Errorf("POST /-/reload with lifecycle: %d, %d reloads; want 200 and one", code, reloads)
	}
}

func TestFirstLoadMustSucceed(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	d, _ := l.daemon(t, &loader{err: badConfig(t)}, "")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.Run(ctx); err == nil || !strings.Contains(err.Error(), "loading config") {
		t.Errorf("Run with a bad config: %v, want a loading error", err)
	}
}

// hostileCA is an interception root whose name is markup: the page must
// show it as text.
func hostileCA(t *testing.T) *lab.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: `<script>alert("mitm")</script>`, Organization: []string{"Evil & Co"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &lab.CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: hostileCA(t)})
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(forger)
	clean, evil := l.target("clean.lab.example", 1), l.target("evil.lab.example", 2)
	l.router.route(clean.Address, l.env.Origin.Addr())
	l.router.route(evil.Address, forger.Addr())
	d, _ := l.daemon(t, &loader{cfg: l.config(time.Second, 2*time.Second, clean, evil)}, "")
	run(t, d)
	waitFor(t, d, wait, "ready", d.Ready)
	h := d.Handler(nil)

	code, page, hdr := get(t, h, "GET", "/")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", code, hdr.Get("Content-Type"))
	}
	bad, _ := rec(d, evil.Key())
	if !bad.Verdict.Detected() {
		t.Fatalf("the hostile forger was judged %s", bad.Verdict)
	}
	for _, want := range []string{clean.Key(), evil.Key(), string(detector.OK), string(bad.Verdict),
		"&lt;script&gt;alert(&#34;mitm&#34;)&lt;/script&gt;", "test-rules.yaml"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("status page contains an unescaped script element")
	}
	if code, _, _ := get(t, h, "GET", "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", code)
	}
	// Problems first, ok last, with the tally on top.
	if i, j := strings.Index(page, ">"+evil.Key()+"<"), strings.Index(page, ">"+clean.Key()+"<"); i < 0 || j < i {
		t.Errorf("%s (at %d) does not come before %s (at %d)", evil.Key(), i, clean.Key(), j)
	}
	for _, want := range []string{`<span class="verdict detected">1 ` + string(bad.Verdict), `<span class="verdict ok">1 ok`, "Last complete round: ", `href="/metrics"`, `id="timeline"`, "<svg"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}

	// The target page: evidence, the chain with the hostile name as
	// text, the history, the same headers.
	code, page, hdr = get(t, h, "GET", "/target/"+evil.Key())
	if code != http.StatusOK || hdr.Get("Content-Security-Policy") != statusCSP {
		t.Fatalf("GET /target/%s: %d, CSP %q", evil.Key(), code, hdr.Get("Content-Security-Policy"))
	}
	for _, want := range []string{`id="chain"`, `id="findings"`, `id="history"`, `id="fix"`, string(bad.Findings[0].Reason),
		`CN=\&lt;script\&gt;alert(\&#34;mitm\&#34;)`, "first verdict", `class="change"`} {
		if !strings.Contains(page, want) {
			t.Errorf("target page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("target page contains an unescaped script element")
	}
	if code, _, _ := get(t, h, "GET", "/target/nope.example:443"); code != http.StatusNotFound {
		t.Errorf("GET an unknown target: %d, want 404", code)
	}
}

// The build traffic section lists the hosts capture judged, escaping
// their names (an SNI is whatever a client sent), and says why capture
// does not run when it does not.
func TestStatusPagePassive(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	d, _ := l.daemon(t, &loader{cfg: l.config(time.Hour, 2*time.Second)}, "")
	h := d.Handler(nil)
	if _, page, _ := get(t, h, "GET", "/"); strings.Contains(page, `id="passive"`) {
		t.Error("a build traffic section without passive capture")
	}

	hostile := `<img src=x onerror=alert(1)>.example:443`
	d.mu.Lock()
	d.passiveLocked().iface, d.passive.capturing, d.passive.conns = "eth0", true, 7
	d.passive.targets[hostile] = exporter.Target{Key: hostile, Verdict: detector.Intercepted, Product: "Fortinet",
		LastProbe: time.Now(), Findings: []detector.Finding{{Reason: detector.ReasonKnownProduct, Severity: detector.Critical, Detail: "issuer names Fortinet"}}}
	d.mu.Unlock()
	_, page, _ := get(t, h, "GET", "/")
	for _, want := range []string{`id="passive"`, "Build traffic on eth0", "7 connections judged", "Fortinet",
		"&lt;img src=x onerror=alert(1)&gt;.example:443", "known-interception-product"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "<img") {
		t.Error("a host name from the network reached the page unescaped")
	}

	d.mu.Lock()
	d.passive.capturing, d.passive.err = false, "capture on eth0: live capture needs CAP_NET_RAW"
	d.mu.Unlock()
	if _, page, _ := get(t, h, "GET", "/"); !strings.Contains(page, "Not capturing; the probes go on") || !strings.Contains(page, "needs CAP_NET_RAW") {
		t.Error("the page does not say why capture is not running")
	}
}
