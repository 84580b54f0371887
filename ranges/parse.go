package ranges

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
)

// githubServices are the keys of the GitHub meta document whose ranges a
// build machine connects to when it fetches code and packages: "web"
// (github.com), "api" (api.github.com), "git" (Git over HTTPS and SSH) and
// "packages" (GitHub Packages and its container registry). The other keys
// list where GitHub's own traffic comes from (hooks, actions, dependabot,
// importer) or unrelated sites (pages, copilot); counting them would make the
// check accept far more of the Internet than the hosts it guards.
var githubServices = []string{"api", "git", "packages", "web"}

// Parse decodes a provider's official list(s) into its prefixes; data holds
// one file per entry in Sources()[provider]. Source and Fetched are left for
// the caller. A list that yields no prefix is an error: an empty answer is far
// more likely a broken fetch than a provider that owns no addresses.
func Parse(provider string, data [][]byte) (Provider, error) {
	srcs, ok := Sources()[provider]
	if !ok {
		return Provider{}, fmt.Errorf("ranges: unknown provider %q (known: %s)", provider, known(Sources()))
	}
	if len(data) != len(srcs) {
		return Provider{}, fmt.Errorf("ranges: %s: got %d files, want %d", provider, len(data), len(srcs))
	}
	var (
		ps  []netip.Prefix
		svc map[string][]netip.Prefix
		err error
	)
	switch provider {
	case "aws":
		ps, svc, err = parseAWS(data[0])
	case "cloudflare":
		ps, err = parseCloudflare(data[0], data[1])
	case "fastly":
		ps, err = parseFastly(data[0])
	case "github":
		ps, svc, err = parseGitHub(data[0])
	case "google":
		ps, err = parseGoogle(data[0])
	}
	if err != nil {
		return Provider{}, fmt.Errorf("ranges: %s: %w", provider, err)
	}
	if len(ps) == 0 {
		return Provider{}, fmt.Errorf("ranges: %s: no prefixes in the list", provider)
	}
	p := Provider{Prefixes: normalize(ps)}
	for name, list := range svc {
		if p.Services == nil {
			p.Services = map[string][]netip.Prefix{}
		}
		p.Services[name] = normalize(list)
	}
	return p, nil
}

// family restricts a field to one address family where the format says so,
// which catches swapped or mislabelled files.
type family int

const (
	anyFamily family = iota
	ipv4
	ipv6
)

func parseCIDR(s string, fam family) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("invalid CIDR %s", excerpt(s))
	}
	if fam == ipv4 && !p.Addr().Is4() {
		return p, fmt.Errorf("%s is not an IPv4 prefix", excerpt(s))
	}
	if fam == ipv6 && !p.Addr().Is6() {
		return p, fmt.Errorf("%s is not an IPv6 prefix", excerpt(s))
	}
	return p, nil
}

func unmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	var se *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON: %w", err)
	default:
		return fmt.Errorf("unexpected JSON: %w", err)
	}
}

// parseGitHub reads the GitHub meta document. Only githubServices are read;
// every other key (booleans, SSH keys, domain objects, services added later)
// is ignored whatever its type, so additions to the document cannot break an
// update.
func parseGitHub(data []byte) ([]netip.Prefix, map[string][]netip.Prefix, error) {
	var top map[string]json.RawMessage
	if err := unmarshal(data, &top); err != nil {
		return nil, nil, err
	}
	var all []netip.Prefix
	svc := map[string][]netip.Prefix{}
	for _, key := range githubServices {
		ps, err := cidrList(key, top[key], anyFamily)
		if err != nil {
			return nil, nil, err
		}
		if len(ps) > 0 {
			svc[key] = ps
			all = append(all, ps...)
		}
	}
	return all, svc, nil
}

// excerpt quotes a value for an error, bounded: it came from the network.
func excerpt(s string) string {
	const limit = 48
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// cidrList decodes a JSON array of CIDR strings, naming the field and the
// offending element on error. A missing or null field is an empty list.
func cidrList(field string, raw json.RawMessage, fam family) ([]netip.Prefix, error) {
	if raw == nil {
		return nil, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fmt.Errorf("%s: want an array of CIDR strings, got %s", field, kind(raw))
	}
	out := make([]netip.Prefix, 0, len(elems))
	for i, e := range elems {
		var s string
		if err := json.Unmarshal(e, &s); err != nil {
			return nil, fmt.Errorf("%s[%d]: want a CIDR string, got %s", field, i, kind(e))
		}
		p, err := parseCIDR(s, fam)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// kind names the type of a JSON value, for errors that must not echo it.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// parseGoogle reads goog.json: every entry holds exactly one of ipv4Prefix
// and ipv6Prefix.
func parseGoogle(data []byte) ([]netip.Prefix, error) {
	var doc struct {
		Prefixes []struct {
			IPv4 *string `json:"ipv4Prefix"`
			IPv6 *string `json:"ipv6Prefix"`
		} `json:"prefixes"`
	}
	if err := unmarshal(data, &doc); err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(doc.Prefixes))
	for i, e := range doc.Prefixes {
		var (
			p   netip.Prefix
			err error
		)
		switch {
		case e.IPv4 != nil && e.IPv6 == nil:
			p, err = parseCIDR(*e.IPv4, ipv4)
		case e.IPv6 != nil && e.IPv4 == nil:
			p, err = parseCIDR(*e.IPv6, ipv6)
		default:
			err = errors.New("want exactly one of ipv4Prefix and ipv6Prefix")
		}
		if err != nil {
			return nil, fmt.Errorf("prefixes[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseCloudflare reads the ips-v4 and ips-v6 text lists: one CIDR per
// line. Blank lines and CRLF endings are tolerated; anything else (a
// comment, an HTML error page) is an error naming the line.
func parseCloudflare(v4, v6 []byte) ([]netip.Prefix, error) {
	a, err := lines("ips-v4", v4, ipv4)
	if err != nil {
		return nil, err
	}
	b, err := lines("ips-v6", v6, ipv6)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

func lines(name string, data []byte, fam family) ([]netip.Prefix, error) {
	var out []netip.Prefix
	n := 0
	for line := range bytes.Lines(data) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		p, err := parseCIDR(string(line), fam)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no prefixes in the list", name)
	}
	return out, nil
}

// parseFastly reads the public-ip-list document.
func parseFastly(data []byte) ([]netip.Prefix, error) {
	var doc struct {
		V4 json.RawMessage `json:"addresses"`
		V6 json.RawMessage `json:"ipv6_addresses"`
	}
	if err := unmarshal(data, &doc); err != nil {
		return nil, err
	}
	a, err := cidrList("addresses", doc.V4, ipv4)
	if err != nil {
		return nil, err
	}
	b, err := cidrList("ipv6_addresses", doc.V6, ipv6)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// parseAWS reads ip-ranges.json, keeping every prefix and indexing them by
// service, so rules can ask for one service (CLOUDFRONT) rather than all of
// AWS, where anyone can rent an address.
func parseAWS(data []byte) ([]netip.Prefix, map[string][]netip.Prefix, error) {
	type entry struct {
		V4      string `json:"ip_prefix"`
		V6      string `json:"ipv6_prefix"`
		Service string `json:"service"`
	}
	var doc struct {
		V4 []entry `json:"prefixes"`
		V6 []entry `json:"ipv6_prefixes"`
	}
	if err := unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	var all []netip.Prefix
	svc := map[string][]netip.Prefix{}
	add := func(field string, i int, s, service string, fam family) error {
		p, err := parseCIDR(s, fam)
		if err != nil {
			return fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		if service == "" {
			return fmt.Errorf("%s[%d]: %s has no service", field, i, p)
		}
		all = append(all, p)
		svc[service] = append(svc[service], p)
		return nil
	}
	for i, e := range doc.V4 {
		if err := add("prefixes", i, e.V4, e.Service, ipv4); err != nil {
			return nil, nil, err
		}
	}
	for i, e := range doc.V6 {
		if err := add("ipv6_prefixes", i, e.V6, e.Service, ipv6); err != nil {
			return nil, nil, err
		}
	}
	return all, svc, nil
}
