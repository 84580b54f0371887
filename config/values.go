package config

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/resolver"
)

// The converters below turn one YAML value into its typed form, or return a
// problem description naming the value and what was wanted.

func parseToolchain(s string) (bool, string) {
	switch s {
	case "auto":
		return true, ""
	case "none":
		return false, ""
	}
	return false, fmt.Sprintf(`unknown mode %q (want "auto" or "none")`, s)
}

func parseTimeout(s string) (time.Duration, string) {
	t, err := time.ParseDuration(s)
	if err != nil || t <= 0 || t > MaxTimeout {
		return 0, fmt.Sprintf(`invalid timeout %q (want a duration above 0 and at most 5m, e.g. "10s")`, s)
	}
	return t, ""
}

func parseInterval(s string) (time.Duration, string) {
	t, err := time.ParseDuration(s)
	if err != nil || t < MinInterval || t > MaxInterval {
		return 0, fmt.Sprintf(`invalid interval %q (want a duration from %s to %s, e.g. "5m")`, s, MinInterval, MaxInterval)
	}
	return t, ""
}

func parseWindow(s string) (time.Duration, string) {
	t, err := time.ParseDuration(s)
	if err != nil || t < MinInterval || t > MaxInterval {
		return 0, fmt.Sprintf(`invalid window %q (want a duration from %s to %s, e.g. "1m")`, s, MinInterval, MaxInterval)
	}
	return t, ""
}

func parseConcurrency(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxConcurrency {
		return 0, fmt.Sprintf("invalid concurrency %q (want an integer from 1 to %d)", s, MaxConcurrency)
	}
	return n, ""
}

func parsePathSamples(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxPathSamples {
		return 0, fmt.Sprintf("invalid samples %q (want an integer from 0, off, to %d)", s, MaxPathSamples)
	}
	return n, ""
}

func parseMaxHops(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxHops {
		return 0, fmt.Sprintf("invalid max_hops %q (want an integer from 0, off, to %d)", s, MaxHops)
	}
	return n, ""
}

// parseTTLMode reads probe.path.ttl: whether the TTL-limited hellos are
// sent at every probe or only when a probe looks suspicious.
func parseTTLMode(s string) (bool, string) {
	switch s {
	case "always":
		return true, ""
	case "suspicious":
		return false, ""
	}
	return false, fmt.Sprintf(`unknown mode %q (want "suspicious" or "always")`, s)
}

func parseResolver(s string) (resolver.Server, string) {
	srv, err := resolver.ParseServer(s)
	if err != nil {
		return resolver.Server{}, fmt.Sprintf("invalid resolver %q: %v", s, err)
	}
	return srv, ""
}

func parsePort(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Sprintf("invalid port %q (want an integer from 1 to 65535)", s)
	}
	return n, ""
}

// parsePassivePort reads a server port to capture (passive.ports).
func parsePassivePort(s string) (uint16, string) {
	n, problem := parsePort(s)
	return uint16(n), problem
}

// parseResolvConf reads dns.resolv_conf: any path, but not an empty one.
func parseResolvConf(s string) (string, string) {
	if s == "" {
		return "", fmt.Sprintf("empty (want a path such as %q)", DefaultResolvConf)
	}
	return s, ""
}

// parseInterface reads passive.interface: a name, not an empty one.
func parseInterface(s string) (string, string) {
	if s == "" {
		return "", `empty (want an interface name such as "eth0")`
	}
	return s, ""
}

// parseHost accepts what can be dialled and checked against a certificate:
// an IP address (made canonical) or a DNS name (lower-cased). Ports, URLs,
// wildcards, trailing dots and zones are refused rather than guessed at.
func parseHost(s string) (string, string) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.String(), ""
	}
	h := strings.ToLower(s)
	if !isDNSName(h) {
		return "", fmt.Sprintf("invalid host %q (want a DNS name or an IP address)", s)
	}
	return h, ""
}

// isDNSName reports whether h is a lower-case LDH host name. A name whose
// last label is numeric is refused: resolvers and browsers read it as a
// mistyped IPv4 address.
func isDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

func parseAddress(s string) (string, string) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return "", fmt.Sprintf(`invalid address %q (want "ip:port", e.g. "192.0.2.10:443")`, s)
	}
	return ap.String(), ""
}

func parsePin(s string) (detector.SPKI, string) {
	var pin detector.SPKI
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return pin, fmt.Sprintf("pin %q is not base64: %v", s, err)
	}
	if len(raw) != len(pin) {
		return pin, fmt.Sprintf("pin %q is %d bytes (want the 32 bytes of a SHA-256)", s, len(raw))
	}
	copy(pin[:], raw)
	return pin, ""
}

func parseCIDR(s string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Sprintf(`invalid CIDR %q (want e.g. "192.0.2.0/24" or "2001:db8::/32")`, s)
	}
	return p.Masked(), ""
}

// parseRange reads one ip_ranges entry: a CIDR, or "provider:NAME" (or
// "provider:NAME/SERVICE") from the ranges snapshot.
func (d *decoder) parseRange(s string) ([]netip.Prefix, string) {
	if strings.HasPrefix(s, "provider:") {
		ps, err := d.ranges.Resolve(s)
		if err != nil {
			return nil, fmt.Sprintf("%v (snapshot %s)", err, d.rangesSource)
		}
		return ps, ""
	}
	p, problem := parseCIDR(s)
	if problem != "" {
		return nil, fmt.Sprintf(`invalid range %q (want a CIDR such as "192.0.2.0/24", or "provider:NAME")`, s)
	}
	return []netip.Prefix{p}, ""
}

var tlsVersions = map[string]uint16{
	"1.0": tls.VersionTLS10,
	"1.1": tls.VersionTLS11,
	"1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13,
}

func parseTLSVersion(s string) (uint16, string) {
	if v, ok := tlsVersions[s]; ok {
		return v, ""
	}
	return 0, fmt.Sprintf(`unknown TLS version %q (want "1.0", "1.1", "1.2" or "1.3")`, s)
}

func parseALPN(s string) (string, string) {
	if s == "" || len(s) > 255 {
		return "", fmt.Sprintf("invalid ALPN protocol %q (want 1 to 255 bytes)", s)
	}
	return s, ""
}

func parseBool(s string) (bool, string) {
	switch s {
	case "true", "True", "TRUE":
		return true, ""
	case "false", "False", "FALSE":
		return false, ""
	}
	return false, fmt.Sprintf("invalid boolean %q (want true or false)", s)
}
