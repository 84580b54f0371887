package config

import (
	"fmt"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// WithToolchain returns targets followed by the discovered hosts not already
// among them, so a host listed in rules.yaml keeps its expectations and its
// line as the source. Discovered hosts get the same validation as written
// ones; those that fail it are returned as errors and left out.
func WithToolchain(targets []Target, hosts []toolchain.Host) ([]Target, []error) {
	return withHosts(targets, hosts, detector.ProtocolTLS)
}

// withHosts adds hosts speaking protocol, validated as written targets
// are, to targets that lack them.
func withHosts(targets []Target, hosts []toolchain.Host, protocol detector.Protocol) ([]Target, []error) {
	out := append([]Target(nil), targets...)
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		seen[t.Key()] = true
	}
	var errs []error
	for _, h := range hosts {
		host, problem := parseHost(h.Host)
		if problem == "" && (h.Port < 1 || h.Port > 65535) {
			problem = fmt.Sprintf("invalid port %d", h.Port)
		}
		if problem != "" {
			errs = append(errs, fmt.Errorf("%s: %s", h.Source, problem))
			continue
		}
		t := Target{Host: host, Port: h.Port, Protocol: protocol, Source: h.Source}
		if !seen[t.Key()] {
			seen[t.Key()] = true
			out = append(out, t)
		}
	}
	return out, errs
}
