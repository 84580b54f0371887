// Package scenario describes real middlebox situations as data — a name, a
// function that sets up the lab network, and the verdict mitmwatch must
// reach — and runs them through the real probe → classify path. The test
// suite asserts every scenario; mitmwatch-demo shows them to people who
// have no middlebox at hand.
package scenario

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/probe"
)

// Env is a running lab: the authorities and the genuine origin every
// scenario shares, plus whatever servers scenarios start.
type Env struct {
	PKI    *lab.PKI
	Origin *lab.Origin

	mu      sync.Mutex
	closers []io.Closer
}

// Options tune the lab.
type Options struct {
	Latency time.Duration // added per round trip by the genuine origin
}

// NewEnv starts the shared part of the lab.
func NewEnv(opts Options) (*Env, error) {
	pki, err := lab.NewPKI()
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	origin, err := lab.NewOrigin(pki, lab.OriginOptions{Latency: opts.Latency})
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	e := &Env{PKI: pki, Origin: origin}
	e.closers = append(e.closers, origin)
	return e, nil
}

// Track registers a server to close with the environment.
func (e *Env) Track(c io.Closer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, c)
}

// Close stops every server the environment started.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i].Close())
	}
	return errors.Join(errs...)
}

// Setup is how a scenario's network looks to the probe.
type Setup struct {
	Targets []config.Target
	Dialer  probe.Dialer // nil: dial targets' addresses directly
	Proxy   *url.URL     // an explicit proxy, as HTTPS_PROXY would name
	Policy  detector.Policy
	DNS     *check.DNS // resolvers for targets without an address
	// PublicRoots, when set, stands in for the store trust.public_roots
	// names (the lab's public root by default): a store that also
	// carries another CA.
	PublicRoots []*lab.CA
	// Path turns the path probes on. Only the scenarios about the path
	// do: on a busy machine a loopback origin can answer a hello late
	// enough to split, and on loopback through a lab dialer nothing can
	// tell it from a splicer (netlab can, with a real router).
	Path probe.PathOptions
}

// Want is what mitmwatch must conclude for every target of a scenario.
type Want struct {
	Verdict detector.Verdict
	Product string
	Reasons []detector.Reason // each must be among the findings
}

// Scenario is one network situation.
type Scenario struct {
	Name        string
	Description string
	Build       func(e *Env) (Setup, error)
	Want        Want
}

// Run sets the scenario up and runs one check round over it.
func (e *Env) Run(ctx context.Context, s Scenario, timeout time.Duration) ([]detector.Result, error) {
	setup, err := s.Build(e)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	public := e.PKI.PublicPool()
	for _, ca := range setup.PublicRoots {
		public.AddCert(ca.Cert)
	}
	p := &probe.Prober{PublicRoots: public, SystemRoots: e.PKI.SystemPool(), Dialer: setup.Dialer, Path: setup.Path}
	if setup.Proxy != nil {
		u := setup.Proxy
		p.Proxy = func(*url.URL) (*url.URL, error) { return u, nil }
	}
	r := &check.Runner{Prober: p, Policy: setup.Policy, Concurrency: 4, Timeout: timeout, DNS: setup.DNS}
	for i := range setup.Targets {
		setup.Targets[i].Source = "lab: " + s.Name
	}
	return r.Run(ctx, setup.Targets), nil
}

// target impersonates host at a lab address, with the expectations a
// rules.yaml (or a baseline) would give for a well-run public host.
func (e *Env) target(host, addr string) config.Target {
	return config.Target{Host: host, Port: 443, Address: addr, Expect: e.expect()}
}

func (e *Env) expect() detector.Expectation {
	return detector.Expectation{
		CASPKI:     []detector.SPKI{detector.SPKIOf(e.PKI.PublicIntermediate.Cert)},
		MinVersion: tls.VersionTLS13,
		ALPN:       []string{"h2"},
		SCT:        true,
	}
}

// funcDialer adapts a dial function to probe.Dialer.
type funcDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (f funcDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}
