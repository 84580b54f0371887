package check

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/resolver"
)

// DNS is how a round asks resolvers about its targets: the system's, whose
// answer the probe then connects to (as build tools would), and reference
// resolvers asked at the same time, so DNS adds one resolver round trip.
type DNS struct {
	Client    *resolver.Client
	System    []resolver.Server
	Reference []resolver.Server
	// Canary is a name that cannot exist; empty skips the wildcard check.
	// Its answers are reused for canaryMaxAge, so a daemon probing one
	// target at a time does not ask it per probe.
	Canary string
	// Hosts is the hosts file, consulted before or after the system
	// resolvers as its Order says (nsswitch.conf); nil consults none. The
	// canary is asked of the resolvers only: it is about them.
	Hosts *resolver.Hosts

	mu       sync.Mutex
	canaryAt time.Time
	canaryOf []detector.DNSAnswer
}

// canaryMaxAge is how long the canary's answers stand for every target.
const canaryMaxAge = time.Minute

// lookupSystem asks the system resolvers in order, as the C library does,
// until one answers.
func (d *DNS) lookupSystem(ctx context.Context, name string) []detector.DNSAnswer {
	var out []detector.DNSAnswer
	for _, s := range d.System {
		a := d.Client.Lookup(ctx, s, name)
		out = append(out, a)
		if a.Answered() || ctx.Err() != nil {
			break
		}
	}
	return out
}

// observe resolves the target through the system resolver, probes the
// address it gave while the reference resolvers are asked, and records
// every answer in the observation.
func (d *DNS) observe(ctx context.Context, p *probe.Prober, t probe.Target) detector.Observation {
	var (
		refs []detector.DNSAnswer
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		refs = d.Client.LookupAll(ctx, d.Reference, t.Host)
	}()
	sys := d.resolveSystem(ctx, t.Host)
	var obs detector.Observation
	if a, ok := answeredWithAddrs(sys); ok {
		t.Addrs = a.Addrs
		obs = p.Probe(ctx, t)
	} else {
		obs = unresolved(t, sys)
	}
	<-done
	obs.DNS = append(sys, refs...)
	return obs
}

// resolveSystem resolves name as the system's tools do: from the hosts
// file when it comes first and lists the name, else from the system
// resolvers, then from the hosts file when it comes after them and they
// gave no address. Every answer asked for is returned, in order.
func (d *DNS) resolveSystem(ctx context.Context, name string) []detector.DNSAnswer {
	if d.Hosts != nil && d.Hosts.Order == resolver.HostsFirst {
		if a, ok := d.Hosts.Lookup(name); ok {
			return []detector.DNSAnswer{a}
		}
	}
	sys := d.lookupSystem(ctx, name)
	if d.Hosts != nil && d.Hosts.Order == resolver.HostsAfterDNS {
		if _, ok := answeredWithAddrs(sys); !ok {
			if a, ok := d.Hosts.Lookup(name); ok {
				sys = append(sys, a)
			}
		}
	}
	return sys
}

func answeredWithAddrs(as []detector.DNSAnswer) (detector.DNSAnswer, bool) {
	for _, a := range as {
		if a.Answered() && len(a.Addrs) > 0 {
			return a, true
		}
	}
	return detector.DNSAnswer{}, false
}

// unresolved is the observation of a target the system resolver gave no
// address for: the connection never started.
func unresolved(t probe.Target, sys []detector.DNSAnswer) detector.Observation {
	obs := detector.Observation{Host: t.Host, Port: t.Port, Path: detector.Path{Kind: detector.PathDirect},
		Failure: detector.FailureDNS, FailureDetail: "the system resolver gave no address"}
	if len(sys) == 0 {
		obs.FailureDetail = "no system resolver is configured"
		return obs
	}
	last := sys[len(sys)-1]
	switch {
	case last.Failure != detector.FailureNone:
		obs.Failure = last.Failure
		obs.FailureDetail = fmt.Sprintf("resolving %s with %s: %s", t.Host, last.Resolver, last.Detail)
	case last.Rcode != "":
		obs.FailureDetail = fmt.Sprintf("resolving %s with %s: %s", t.Host, last.Resolver, last.Rcode)
	}
	return obs
}

// canary asks every resolver about the canary name, or returns what they
// said less than canaryMaxAge ago.
func (d *DNS) canary(ctx context.Context) []detector.DNSAnswer {
	if d == nil || d.Canary == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canaryOf != nil && time.Since(d.canaryAt) < canaryMaxAge {
		return d.canaryOf
	}
	var refs []detector.DNSAnswer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		refs = d.Client.LookupAll(ctx, d.Reference, d.Canary)
	}()
	sys := d.lookupSystem(ctx, d.Canary)
	wg.Wait()
	d.canaryOf, d.canaryAt = append(sys, refs...), time.Now()
	return d.canaryOf
}
