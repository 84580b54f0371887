package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scrapeTimeout is the scrape timeout the driver announces, as Prometheus
// does with its default scrape_timeout; blackbox_exporter bounds a probe by
// it (less its offset) or by the module's timeout, whichever is shorter.
const scrapeTimeout = 10 * time.Second

// moduleName is the blackbox module of the i-th host.
func moduleName(i int) string { return fmt.Sprintf("tls_%03d", i) }

// writeBlackboxConfig writes one module per host: the tcp prober with TLS,
// verified against the lab's public root, the host as server name. The tcp
// prober takes the server name from the module, not from the target, so 200
// names behind one address need 200 modules.
func writeBlackboxConfig(path, caFile string, hosts []string, timeout time.Duration) error {
	var b strings.Builder
	b.WriteString("modules:\n")
	for i, h := range hosts {
		fmt.Fprintf(&b, "  %s:\n    prober: tcp\n    timeout: %s\n    tcp:\n      preferred_ip_protocol: ip4\n      tls: true\n      tls_config:\n        ca_file: %s\n        server_name: %s\n",
			moduleName(i), timeout, caFile, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// driver plays the Prometheus server that would scrape blackbox_exporter:
// one scrape job per host, each asking for a probe once per interval.
type driver struct {
	client *http.Client
	base   string // http://address of the exporter
	target string // the origin's address, the probe target of every module
	hosts  []string

	probes, failures atomic.Int64

	mu      sync.Mutex
	lastErr error
}

func newDriver(exporterAddr, target string, hosts []string) *driver {
	return &driver{
		client: &http.Client{Transport: direct(), Timeout: scrapeTimeout},
		base:   "http://" + exporterAddr,
		target: target,
		hosts:  hosts,
	}
}

// probe asks the exporter to probe the i-th host and checks probe_success.
func (d *driver) probe(ctx context.Context, i int) error {
	q := url.Values{"module": {moduleName(i)}, "target": {d.target}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/probe?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", fmt.Sprint(scrapeTimeout.Seconds()))
	fams, err := d.scrape(req)
	if err != nil {
		return fmt.Errorf("blackbox %s (%s): %w", moduleName(i), d.hosts[i], err)
	}
	ok, present := 0.0, false
	for _, s := range fams["probe_success"] {
		ok, present = s.value, true
	}
	if !present || ok != 1 {
		return fmt.Errorf("blackbox %s (%s): probe_success %v, want 1", moduleName(i), d.hosts[i], ok)
	}
	return nil
}

func (d *driver) scrape(req *http.Request) (map[string][]sample, error) {
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return parseMetrics(body)
}

// round probes every host once, a few at a time, and fails on the first
// host that does not succeed: the correctness check before measuring.
func (d *driver) round(ctx context.Context, concurrency int) error {
	sem := make(chan struct{}, concurrency)
	errs := make([]error, len(d.hosts))
	var wg sync.WaitGroup
	for i := range d.hosts {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = d.probe(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run probes each host once per interval until ctx ends, the hosts spread
// evenly over the interval as the scrape offsets of separate jobs are.
// Outcomes are counted in probes and failures.
func (d *driver) run(ctx context.Context, interval time.Duration) {
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range d.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := begin.Add(time.Duration(i) * interval / time.Duration(len(d.hosts)))
			for {
				if sleep(ctx, time.Until(next)) != nil {
					return
				}
				err := d.probe(ctx, i)
				if ctx.Err() != nil {
					return // cut short by the end of the run
				}
				d.probes.Add(1)
				if err != nil {
					d.failures.Add(1)
					d.mu.Lock()
					d.lastErr = err
					d.mu.Unlock()
				}
				next = next.Add(interval)
			}
		}()
	}
	wg.Wait()
}

func (d *driver) lastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}
