package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// acceptHeader is what a Prometheus server asks for; mitmwatch answers in
// the classic text format. Go's transport adds Accept-Encoding: gzip, as
// Prometheus does.
const acceptHeader = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"

// direct is an HTTP transport that never uses a proxy.
func direct() *http.Transport {
	return &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
}

// sample is one series of a parsed family: its labels and value (the
// count, for summaries and histograms).
type sample struct {
	labels map[string]string
	value  float64
}

// fetchMetrics scrapes url once and parses the text exposition.
func fetchMetrics(ctx context.Context, client *http.Client, url string) (map[string][]sample, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	fams, err := parseMetrics(body)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", url, err)
	}
	return fams, len(body), nil
}

func parseMetrics(body []byte) (map[string][]sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := make(map[string][]sample, len(mfs))
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Untyped != nil:
				s.value = m.GetUntyped().GetValue()
			case m.Summary != nil:
				s.value = float64(m.GetSummary().GetSampleCount())
			case m.Histogram != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// sum adds up every sample of a family.
func sum(fams map[string][]sample, name string) float64 {
	var t float64
	for _, s := range fams[name] {
		t += s.value
	}
	return t
}

// allOK checks that mitmwatch judged every host ok: each has
// mitmwatch_target_verdict{verdict="ok"} 1, and no other target is there.
func allOK(fams map[string][]sample, hosts []string) error {
	current := map[string]string{}
	for _, s := range fams["mitmwatch_target_verdict"] {
		if s.value == 1 {
			current[s.labels["target"]] = s.labels["verdict"]
		}
	}
	var bad []string
	for _, h := range hosts {
		key := h + ":443"
		switch v, ok := current[key]; {
		case !ok:
			bad = append(bad, key+" has no verdict")
		case v != "ok":
			bad = append(bad, key+" is "+v)
		}
		delete(current, key)
	}
	for k, v := range current {
		bad = append(bad, fmt.Sprintf("unexpected target %s (%s)", k, v))
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("mitmwatch /metrics: %d of %d targets not ok, the benchmark measures clean rounds: %s",
			len(bad), len(hosts), strings.Join(bad[:min(len(bad), 5)], "; "))
	}
	return nil
}

// storm is the outcome of many scrapers scraping at once.
type storm struct {
	latencies []time.Duration // sorted
	errors    int
	wall      time.Duration
	bytes     int // size of one answer as sent (gzipped, if asked)
}

func (s storm) quantile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	return s.latencies[min(len(s.latencies)-1, int(q*float64(len(s.latencies))))]
}

func (s storm) rate() float64 { return float64(len(s.latencies)) / s.wall.Seconds() }

// scrapeStorm runs n scrapers, each with its own connection as separate
// Prometheus servers would have, each scraping url back to back for d.
// Latency is from sending the request to the last byte of the answer. With
// gzip the scrapers ask for a compressed answer, as Prometheus does, but do
// not inflate it: on a small machine that would take CPU from the daemon,
// which a Prometheus server on its own machine does not.
func scrapeStorm(ctx context.Context, url string, n int, d time.Duration, gzip bool) (storm, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		out storm
		wg  sync.WaitGroup
	)
	begin := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: direct(), Timeout: 10 * time.Second}
			var lat []time.Duration
			var errs, size int
			for ctx.Err() == nil {
				t0 := time.Now()
				nb, err := scrapeOnce(ctx, client, url, gzip)
				if ctx.Err() != nil {
					break // cut short by the end of the run: not a sample
				}
				if err != nil {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
				size = nb
			}
			mu.Lock()
			out.latencies = append(out.latencies, lat...)
			out.errors += errs
			out.bytes = max(out.bytes, size)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.wall = time.Since(begin)
	slices.Sort(out.latencies)
	if len(out.latencies) == 0 {
		return out, fmt.Errorf("scrape storm: no scrape of %s succeeded (%d errors)", url, out.errors)
	}
	return out, nil
}

func scrapeOnce(ctx context.Context, client *http.Client, url string, gzip bool) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", acceptHeader)
	if gzip {
		// Set by hand, the transport leaves the answer compressed.
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s", resp.Status)
	}
	return int(n), nil
}
