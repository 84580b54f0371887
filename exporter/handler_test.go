package exporter

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// counting is a gatherer that counts its renderings and can be made to
// fail.
type counting struct {
	g     prometheus.Gatherer
	calls atomic.Int64
	fail  atomic.Bool
}

func (c *counting) Gather() ([]*dto.MetricFamily, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return nil, errors.New("collector exploded")
	}
	return c.g.Gather()
}

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fleetRegistry is a registry with the collector over the fleet snapshot
// and a counter the test can move, to see when a rendering is new.
func fleetRegistry(t *testing.T) (*prometheus.Registry, prometheus.Counter) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_moves_total", Help: "Moves."})
	reg.MustRegister(NewCollector(fixed(fleet())), c)
	return reg, c
}

type answer struct {
	status   int
	header   http.Header
	body     []byte // inflated when it came gzipped
	wireSize int
}

func scrape(t *testing.T, url string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// The transport would ask for gzip and inflate it silently; the tests
	// want to see what was sent.
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wire, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: wire, wireSize: len(wire)}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err != nil {
			t.Fatalf("gzip answer: %v", err)
		}
		if a.body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gzip answer: %v", err)
		}
	}
	return a
}

// The cached handler sends what promhttp sends, byte for byte, in the text
// format, gzipped when asked, and the protobuf format when asked.
func TestHandlerServesWhatPromhttpServes(t *testing.T) {
	reg, _ := fleetRegistry(t)
	ours := httptest.NewServer(NewHandler(reg, HandlerOpts{MaxAge: time.Second}))
	defer ours.Close()
	theirs := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer theirs.Close()

	prom := map[string]string{
		"Accept":          "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
		"Accept-Encoding": "gzip",
	}
	for _, hdr := range []map[string]string{prom, {}, {"Accept-Encoding": "gzip;q=0"}} {
		got, want := scrape(t, ours.URL, hdr), scrape(t, theirs.URL, hdr)
		if got.status != 200 || want.status != 200 {
			t.Fatalf("status %d, promhttp %d", got.status, want.status)
		}
		for _, h := range []string{"Content-Type", "Content-Encoding"} {
			if got.header.Get(h) != want.header.Get(h) {
				t.Errorf("headers %v: %s %q, promhttp %q", hdr, h, got.header.Get(h), want.header.Get(h))
			}
		}
		if !bytes.Equal(got.body, want.body) {
			t.Errorf("headers %v: body differs from promhttp's:\n%s\n---\n%s", hdr, got.body, want.body)
		}
	}
	a := scrape(t, ours.URL, prom)
	if a.wireSize*4 > len(a.body) {
		t.Errorf("gzipped answer %d bytes for %d: not compressed", a.wireSize, len(a.body))
	}

	for _, enc := range []string{"gzip", "identity"} {
		req, _ := http.NewRequest(http.MethodHead, ours.URL, nil)
		req.Header.Set("Accept-Encoding", enc)
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if full := scrape(t, ours.URL, map[string]string{"Accept-Encoding": enc}); resp.StatusCode != 200 || resp.ContentLength != int64(full.wireSize) {
			t.Errorf("HEAD with %s: %d, Content-Length %d, want 200 and %d", enc, resp.StatusCode, resp.ContentLength, full.wireSize)
		}
	}

	pb := scrape(t, ours.URL, map[string]string{"Accept": string(expfmt.FmtProtoDelim)})
	if ct := expfmt.ResponseFormat(pb.header); ct.FormatType() != expfmt.TypeProtoDelim {
		t.Fatalf("asked for protobuf, got %q", pb.header.Get("Content-Type"))
	}
	dec := expfmt.NewDecoder(bytes.NewReader(pb.body), expfmt.ResponseFormat(pb.header))
	n := 0
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding protobuf answer: %v", err)
		}
		n++
	}
	if want, _ := reg.Gather(); n != len(want) {
		t.Errorf("protobuf answer has %d families, want %d", n, len(want))
	}
}

// Scrapes within MaxAge share one rendering, however many arrive at once;
// the first scrape after it renders again and shows what changed.
func TestHandlerRendersOncePerMaxAge(t *testing.T) {
	reg, moves := fleetRegistry(t)
	g := &counting{g: reg}
	clk := &clock{t: probedAt}
	srv := httptest.NewServer(NewHandler(g, HandlerOpts{MaxAge: time.Second, Now: clk.Now}))
	defer srv.Close()

	hdr := map[string]string{"Accept-Encoding": "gzip"}
	var wg sync.WaitGroup
	bodies := make([][]byte, 40)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = scrape(t, srv.URL, hdr).body
		}()
	}
	wg.Wait()
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("40 scrapes within MaxAge gathered %d times, want 1", n)
	}
	for _, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatal("scrapes sharing one rendering got different bodies")
		}
	}

	moves.Inc()
	clk.Add(999 * time.Millisecond)
	if b := scrape(t, srv.URL, hdr).body; !bytes.Contains(b, []byte("test_moves_total 0")) || g.calls.Load() != 1 {
		t.Fatalf("a scrape within MaxAge rendered again (%d renderings) or saw the change", g.calls.Load())
	}
	clk.Add(time.Millisecond)
	if b := scrape(t, srv.URL, hdr).body; !bytes.Contains(b, []byte("test_moves_total 1")) {
		t.Fatalf("the first scrape after MaxAge did not render again:\n%s", b)
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d renderings, want 2", n)
	}

	// Each format has its own rendering; a plain scrape shares the
	// gzipped one's.
	scrape(t, srv.URL, nil)
	scrape(t, srv.URL, map[string]string{"Accept": string(expfmt.FmtProtoDelim)})
	if n := g.calls.Load(); n != 3 {
		t.Fatalf("%d renderings after a protobuf scrape, want 3", n)
	}
}

// gate is a gatherer whose renderings can be held: it reports each one it
// starts on entered and finishes it when release is sent to.
type gate struct {
	g       prometheus.Gatherer
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Gather() ([]*dto.MetricFamily, error) {
	if g.hold.Load() {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.g.Gather()
}

// Once a rendering has gone stale, the scrape that renders the next one
// waits for it, but the others are served the stale one meanwhile: a burst
// of scrapers never stalls behind a rendering.
func TestHandlerServesStaleWhileRendering(t *testing.T) {
	reg, moves := fleetRegistry(t)
	g := &gate{g: reg, entered: make(chan struct{}), release: make(chan struct{})}
	clk := &clock{t: probedAt}
	srv := httptest.NewServer(NewHandler(g, HandlerOpts{MaxAge: time.Second, Now: clk.Now}))
	defer srv.Close()
	hdr := map[string]string{"Accept-Encoding": "gzip"}

	if b := scrape(t, srv.URL, hdr).body; !bytes.Contains(b, []byte("test_moves_total 0")) {
		t.Fatalf("first scrape:\n%s", b)
	}
	moves.Inc()
	clk.Add(time.Second)
	g.hold.Store(true)
	renderer := make(chan []byte)
	go func() { renderer <- scrape(t, srv.URL, hdr).body }()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a scrape after MaxAge did not render again")
	}
	// While that rendering is held, others get the previous one at once.
	for range 5 {
		if b := scrape(t, srv.URL, hdr).body; !bytes.Contains(b, []byte("test_moves_total 0")) {
			t.Fatalf("scrape during a rendering did not get the previous one:\n%s", b)
		}
	}
	g.hold.Store(false)
	close(g.release)
	if b := <-renderer; !bytes.Contains(b, []byte("test_moves_total 1")) {
		t.Fatalf("the scrape that rendered got:\n%s", b)
	}
	if b := scrape(t, srv.URL, hdr).body; !bytes.Contains(b, []byte("test_moves_total 1")) {
		t.Fatalf("after the rendering, scrapes get it:\n%s", b)
	}
}

// A failed gathering is a 500 with the reason, as promhttp does, and is not
// kept: the next scrape tries again.
func TestHandlerGatherError(t *testing.T) {
	reg, _ := fleetRegistry(t)
	g := &counting{g: reg}
	g.fail.Store(true)
	clk := &clock{t: probedAt}
	srv := httptest.NewServer(NewHandler(g, HandlerOpts{MaxAge: time.Minute, Now: clk.Now}))
	defer srv.Close()

	a := scrape(t, srv.URL, nil)
	if a.status != http.StatusInternalServerError || !strings.Contains(string(a.body), "collector exploded") {
		t.Fatalf("failed gathering: %d %q, want 500 with the reason", a.status, a.body)
	}
	g.fail.Store(false)
	if a := scrape(t, srv.URL, nil); a.status != 200 || !bytes.Contains(a.body, []byte("mitmwatch_target_verdict")) {
		t.Fatalf("after the collector recovered: %d %q", a.status, a.body)
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d gatherings, want 2: a failure must not be cached", n)
	}
}

// invalid is a collector whose metric the registry rejects, as the
// collector's emit does on a bug.
type invalid struct{}

var invalidDesc = prometheus.NewDesc("test_invalid", "Invalid.", []string{"a"}, nil)

func (invalid) Describe(ch chan<- *prometheus.Desc) { ch <- invalidDesc }
func (invalid) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(invalidDesc, errors.New("label value is not UTF-8"))
}

// A collector's bad metric fails the scrape with the reason instead of
// serving an answer with a hole in it.
func TestHandlerInvalidMetric(t *testing.T) {
	reg, _ := fleetRegistry(t)
	reg.MustRegister(invalid{})
	srv := httptest.NewServer(NewHandler(reg, HandlerOpts{MaxAge: time.Second}))
	defer srv.Close()
	a := scrape(t, srv.URL, map[string]string{"Accept-Encoding": "gzip"})
	if a.status != http.StatusInternalServerError || !strings.Contains(string(a.body), "label value is not UTF-8") {
		t.Fatalf("invalid metric: %d %q, want 500 with the reason", a.status, a.body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"GZIP":                    true,
		"x-gzip":                  true,
		"deflate, gzip;q=0.5":     true,
		"gzip;q=0":                false,
		"gzip; q=0.000":           false,
		"*":                       true,
		"*;q=0":                   false,
		"*, gzip;q=0":             false,
		"gzip;q=0, *":             false,
		"identity":                false,
		"br, zstd":                false,
		"gzip;q=garbage":          true,
		"  gzip  ;  q = 0.8 , br": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

// The handler is what Prometheus's own parser reads.
func TestHandlerAnswerParses(t *testing.T) {
	reg, _ := fleetRegistry(t)
	srv := httptest.NewServer(NewHandler(reg, HandlerOpts{}))
	defer srv.Close()
	a := scrape(t, srv.URL, map[string]string{"Accept-Encoding": "gzip"})
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(a.body))
	if err != nil {
		t.Fatalf("parsing the answer: %v", err)
	}
	if len(mfs["mitmwatch_target_verdict"].GetMetric()) == 0 {
		t.Fatal("no verdict series in the answer")
	}
}

// Negotiated formats are remembered per Accept header, within a bound that
// a client sending a new header at every scrape cannot push.
func TestHandlerRemembersFormatsWithinBound(t *testing.T) {
	reg, _ := fleetRegistry(t)
	h := NewHandler(reg, HandlerOpts{MaxAge: time.Minute}).(*handler)
	for i := range 3 * maxAcceptHeaders {
		accept := fmt.Sprintf("text/plain;version=0.0.4;q=0.%d,*/*;q=0.1", i%9+1)
		if i%2 == 1 {
			accept = fmt.Sprintf("%s;q=0.%d", expfmt.FmtProtoDelim, i%9+1)
		}
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", accept+strings.Repeat(" ", i))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := expfmt.TypeTextPlain
		if i%2 == 1 {
			want = expfmt.TypeProtoDelim
		}
		if got := expfmt.ResponseFormat(rec.Header()).FormatType(); rec.Code != 200 || got != want {
			t.Fatalf("Accept %q: %d, format %v, want %v", accept, rec.Code, got, want)
		}
		if len(h.formats) > maxAcceptHeaders {
			t.Fatalf("%d Accept headers remembered, bound is %d", len(h.formats), maxAcceptHeaders)
		}
	}
}
