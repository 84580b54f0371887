package ranges

import (
	_ "embed"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Version is the snapshot file format's version.
const Version = 1

// Snapshot is every provider's ranges as last fetched.
type Snapshot struct {
	Version   int                 `json:"version"`
	Providers map[string]Provider `json:"providers"`
}

// Provider is one provider's ranges and where and when they were taken from,
// so a report can say how old its evidence is.
type Provider struct {
	Source   string                    `json:"source"`             // URL(s) or file(s), comma-separated
	Fetched  time.Time                 `json:"fetched"`            // zero: never fetched
	Prefixes []netip.Prefix            `json:"prefixes"`           // masked, deduplicated, sorted
	Services map[string][]netip.Prefix `json:"services,omitempty"` // by the list's service names (aws, github)
}

// Sources returns each provider's official list(s): what Update fetches when
// not told otherwise. Cloudflare publishes IPv4 and IPv6 in two files, in
// that order.
func Sources() map[string][]string {
	return map[string][]string{
		"aws":        {"https://ip-ranges.amazonaws.com/ip-ranges.json"},
		"cloudflare": {"https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"},
		"fastly":     {"https://api.fastly.com/public-ip-list"},
		"github":     {"https://api.github.com/meta"},
		"google":     {"https://www.gstatic.com/ipranges/goog.json"},
	}
}

//go:embed snapshot.json
var embedded []byte

// Embedded returns the snapshot shipped in the binary. Its providers carry
// their sources but no ranges (see the package doc). Should the embedded file
// ever fail to decode — a test guards against it — every provider is listed
// empty, which Resolve reports as "run update" rather than matching nothing.
func Embedded() Snapshot {
	s, err := decode(embedded)
	if err != nil {
		s = Snapshot{Version: Version, Providers: map[string]Provider{}}
		for name, urls := range Sources() {
			s.Providers[name] = Provider{Source: strings.Join(urls, ", "), Prefixes: []netip.Prefix{}}
		}
	}
	return s
}

// Resolve turns a reference from the rules, "provider:NAME" or
// "provider:NAME/SERVICE" (e.g. "provider:aws/CLOUDFRONT"), into prefixes.
// The result is a copy the caller may keep or change.
func (s Snapshot) Resolve(ref string) ([]netip.Prefix, error) {
	rest, ok := strings.CutPrefix(ref, "provider:")
	if !ok {
		return nil, fmt.Errorf("ranges: %q: want provider:NAME or provider:NAME/SERVICE", ref)
	}
	name, service, sub := strings.Cut(rest, "/")
	p, ok := s.Providers[name]
	if !ok {
		return nil, fmt.Errorf("ranges: %q: unknown provider %q (known: %s)", ref, name, known(s.Providers))
	}
	if len(p.Prefixes) == 0 {
		return nil, fmt.Errorf("ranges: %q: provider %s has no ranges in the snapshot; run `mitmwatch ranges update`", ref, name)
	}
	if !sub {
		return slices.Clone(p.Prefixes), nil
	}
	if len(p.Services) == 0 {
		return nil, fmt.Errorf("ranges: %q: provider %s has no services", ref, name)
	}
	ps, ok := p.Services[service]
	if !ok {
		return nil, fmt.Errorf("ranges: %q: provider %s has no service %q (known: %s)", ref, name, service, known(p.Services))
	}
	return slices.Clone(ps), nil
}

func known[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}

// normalize masks each prefix, turns IPv4-mapped IPv6 prefixes into IPv4
// ones (a mapped prefix and its IPv4 form cover the same hosts, and
// netip.Prefix.Contains treats them as different families), then sorts and
// deduplicates. It never returns nil, so an empty list stays [] in JSON.
func normalize(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, canonical(p))
	}
	slices.SortFunc(out, netip.Prefix.Compare)
	return slices.Compact(out)
}

func canonical(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}
