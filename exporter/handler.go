package exporter

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// HandlerOpts tunes the /metrics handler.
type HandlerOpts struct {
	// MaxAge is how long one rendering of the metrics is served before the
	// next scrape renders them again. Zero renders at every scrape, but
	// scrapes that arrive during a rendering still share it.
	MaxAge time.Duration
	// Logger receives gathering errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewHandler serves g's metrics to Prometheus as promhttp does (content
// negotiation, gzip, a 500 with the reason when gathering fails), except
// that it renders them at most once per opts.MaxAge and serves every scrape
// in between the same encoded, already compressed bytes.
//
// Why: the series of hundreds of targets cost milliseconds of CPU to gather,
// encode and compress, which on a build agent's spare core makes a burst of
// scrapers (several Prometheus servers, a federation, people with curl)
// queue behind each other and drives memory up with one encoder per
// request. The results change once per probe, and a scrape interval is
// seconds long, so a second-old rendering loses nothing.
func NewHandler(g prometheus.Gatherer, opts HandlerOpts) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &handler{g: g, opts: opts, cache: map[expfmt.Format]*entry{}, formats: map[string]expfmt.Format{}}
}

type handler struct {
	g    prometheus.Gatherer
	opts HandlerOpts

	mu sync.Mutex
	// cache holds the renderings per negotiated format. The formats come
	// from a fixed list crossed with the four escaping schemes, so the map
	// stays small whatever clients ask.
	cache map[expfmt.Format]*entry
	// formats remembers the format negotiated for an Accept header.
	formats map[string]expfmt.Format
}

// entry is the state of one format.
type entry struct {
	cur  *rendering // the latest complete rendering; nil before the first or after a failure
	next *rendering // the rendering being made, if any
}

// rendering is one encoding of the metrics. Its fields are written once,
// before done is closed.
type rendering struct {
	done chan struct{}
	at   time.Time
	gz   []byte // the encoded metrics, gzipped
	size int    // their length uncompressed
	err  error
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	format := h.negotiate(req.Header.Get("Accept"))
	r := h.get(format)
	select {
	case <-r.done:
	case <-req.Context().Done():
		return // the scraper gave up; the rendering goes on for the next one
	}
	if r.err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+r.err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Add("Vary", "Accept")
	hdr.Add("Vary", "Accept-Encoding")
	hdr.Set("Content-Type", string(format))
	if acceptsGzip(req.Header.Get("Accept-Encoding")) {
		hdr.Set("Content-Encoding", "gzip")
		hdr.Set("Content-Length", strconv.Itoa(len(r.gz)))
		if req.Method != http.MethodHead {
			w.Write(r.gz)
		}
		return
	}
	// Scrapers ask for gzip; curl and people may not. Only the compressed
	// bytes are kept, a twentieth of the plain ones, so these are inflated.
	hdr.Set("Content-Length", strconv.Itoa(r.size))
	if req.Method != http.MethodHead {
		zr, err := gzip.NewReader(bytes.NewReader(r.gz))
		if err == nil {
			_, err = io.Copy(w, zr)
		}
		if err != nil {
			h.opts.Logger.Debug("serving metrics uncompressed", "err", err)
		}
	}
}

// negotiate picks the format for an Accept header. A fleet's scrapers send
// the same few headers, so the answer is remembered for a bounded number
// of them instead of parsing each scrape's.
func (h *handler) negotiate(accept string) expfmt.Format {
	h.mu.Lock()
	f, ok := h.formats[accept]
	h.mu.Unlock()
	if ok {
		return f
	}
	f = expfmt.NegotiateAccept(http.Header{"Accept": {accept}}, expfmt.DefaultAcceptedFormats()...)
	h.mu.Lock()
	if len(h.formats) >= maxAcceptHeaders {
		clear(h.formats)
	}
	h.formats[accept] = f
	h.mu.Unlock()
	return f
}

// maxAcceptHeaders bounds the remembered Accept headers.
const maxAcceptHeaders = 32

// get returns the rendering to serve for format. A fresh one is shared.
// When it is older than MaxAge, the first scrape renders the next one and
// waits for it while the others keep getting the previous one, so no
// scrape but that one waits for a rendering, which would otherwise stall
// a burst of scrapers once per MaxAge. Only the very first rendering, or
// the first after a failure, is waited for by all.
func (h *handler) get(format expfmt.Format) *rendering {
	h.mu.Lock()
	e := h.cache[format]
	if e == nil {
		e = &entry{}
		h.cache[format] = e
	}
	if cur := e.cur; cur != nil && (e.next != nil || h.opts.Now().Sub(cur.at) < h.opts.MaxAge) {
		h.mu.Unlock()
		return cur
	}
	if next := e.next; next != nil {
		h.mu.Unlock()
		return next
	}
	r := &rendering{done: make(chan struct{}), at: h.opts.Now()}
	e.next = r
	h.mu.Unlock()

	r.gz, r.size, r.err = render(h.g, format)
	if r.err != nil {
		h.opts.Logger.Error("serving metrics", "err", r.err)
	}
	h.mu.Lock()
	e.next, e.cur = nil, r
	if r.err != nil {
		e.cur = nil // every scrape sees the failure, and the next one tries again
	}
	h.mu.Unlock()
	close(r.done)
	return r
}

// render gathers and encodes the metrics once, gzipped.
func render(g prometheus.Gatherer, format expfmt.Format) (gz []byte, size int, err error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, 0, fmt.Errorf("gathering metrics: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, 0, fmt.Errorf("encoding %s: %w", mf.GetName(), err)
		}
	}
	if c, ok := enc.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, 0, fmt.Errorf("encoding metrics: %w", err)
		}
	}
	var z bytes.Buffer
	// The best compression costs a few milliseconds once per rendering and
	// saves bytes on every scrape served from it, and with many scrapers
	// the kernel's copying of those bytes is most of the cost of a scrape.
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression) // a valid level cannot fail
	zw.Write(buf.Bytes())                                  // writes to a bytes.Buffer do not fail
	if err := zw.Close(); err != nil {
		return nil, 0, fmt.Errorf("compressing metrics: %w", err)
	}
	return z.Bytes(), buf.Len(), nil
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: named
// or matched by "*", with a q-value other than zero (RFC 9110, 12.5.3).
func acceptsGzip(header string) bool {
	gzip, star := -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch c := strings.ToLower(strings.TrimSpace(coding)); c {
		case "gzip", "x-gzip":
			gzip = q
		case "*":
			star = q
		}
	}
	if gzip >= 0 {
		return gzip > 0
	}
	return star > 0
}
