// Package resolver asks DNS servers about a name and records what each
// said, as data.
//
// A box that tampers with DNS needs no certificate: it answers NXDOMAIN for
// a registry, 0.0.0.0 for everything, or the address of its own proxy. The
// only way to see that is to ask the resolver build tools use (the
// system's, from resolv.conf) and reference resolvers it cannot answer for
// (over TLS or HTTPS), and compare. This package does the asking — plain
// UDP with TCP fallback, TCP, DNS over TLS and DNS over HTTPS — and returns
// each answer as a detector.DNSAnswer; package detector does the comparing.
// It also reads the hosts file, which the system's tools consult before DNS
// (Hosts), and finds DoH references given by name without the resolver
// under test (Server.Bootstrap).
// Like probe, it never returns an error for a failed lookup: the failure is
// part of the answer.
package resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Server is one resolver to ask.
type Server struct {
	// Spec is the server as configured, e.g. "udp://192.0.2.53:53",
	// "tls://192.0.2.53:853#dns.example", "https://dns.example/dns-query";
	// system servers read "system udp://127.0.0.53:53".
	Spec       string
	Proto      string // "udp", "tcp", "tls" or "https"
	Addr       string // "ip:port" for udp, tcp and tls
	URL        string // the endpoint for https
	ServerName string // the name a tls server's certificate must carry
	System     bool   // listed in resolv.conf: what build tools ask
	// Bootstrap, for an https server given by name, are the addresses
	// dialled for it, so that finding it asks no resolver (see
	// WithBootstrap); ParseServer sets those public operators publish.
	Bootstrap []netip.Addr
}

// Default ports.
const (
	portDNS = "53"
	portDoT = "853"
)

// ParseServer parses a resolver spec: udp://ip[:port], tcp://ip[:port],
// tls://ip[:port][#name] or https://host[:port]/path. The plain and TLS
// forms take an IP address only: a reference resolver found by name would
// be found through the very resolver under test. The TLS name defaults to
// the IP address, which resolvers such as 1.1.1.1 carry in their
// certificates. Errors state the reason alone; the caller names the spec.
func ParseServer(spec string) (Server, error) {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return Server{}, errors.New("missing scheme (want udp://, tcp://, tls:// or https://)")
	}
	srv := Server{Spec: spec, Proto: strings.ToLower(scheme)}
	switch srv.Proto {
	case "udp", "tcp":
		if strings.Contains(rest, "#") {
			return Server{}, fmt.Errorf("a #server name applies only to tls://")
		}
		ap, err := parseAddrPort(rest, portDNS)
		if err != nil {
			return Server{}, err
		}
		srv.Addr = ap.String()
	case "tls":
		hostport, name, named := strings.Cut(rest, "#")
		ap, err := parseAddrPort(hostport, portDoT)
		if err != nil {
			return Server{}, err
		}
		srv.Addr, srv.ServerName = ap.String(), ap.Addr().WithZone("").String()
		if named {
			if !isHostName(name) && !isIP(name) {
				return Server{}, fmt.Errorf("invalid TLS server name %q", name)
			}
			srv.ServerName = name
		}
	case "https":
		u, err := parseDoHURL(spec)
		if err != nil {
			return Server{}, err
		}
		srv.URL = u
		if addrs, ok := publishedBootstrap[srv.dohHost()]; ok {
			srv.Bootstrap = slices.Clone(addrs)
		}
	default:
		return Server{}, fmt.Errorf("unsupported scheme %q (want udp, tcp, tls or https)", scheme)
	}
	return srv, nil
}

// parseAddrPort parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port".
func parseAddrPort(s, defaultPort string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, errors.New("missing address")
	}
	if i := strings.IndexAny(s, "/?@"); i >= 0 {
		return netip.AddrPort{}, fmt.Errorf("unexpected %q after the address (want only ip[:port])", s[i:])
	}
	host, port := s, defaultPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.Count(s, ":") > 1 {
		return netip.AddrPort{}, fmt.Errorf("IPv6 address %q must be in brackets, as in [%s]:%s", s, s, defaultPort)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address (a resolver is given by address, not by name)", host)
	}
	if z := addr.Zone(); z != "" && !isZone(z) {
		return netip.AddrPort{}, fmt.Errorf("invalid zone %q (want an interface name or index)", z)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, fmt.Errorf("invalid port %q", port)
	}
	return netip.AddrPortFrom(addr, uint16(n)), nil
}

// parseDoHURL checks an RFC 8484 endpoint. Its host may be a name: the
// certificate, not the address it resolves to, authenticates the server.
func parseDoHURL(spec string) (string, error) {
	u, err := url.Parse(spec)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("invalid URL: %w", err)
	}
	switch {
	case u.User != nil:
		return "", errors.New("user info not allowed in a DoH URL")
	case u.Fragment != "" || strings.HasSuffix(spec, "#"):
		return "", errors.New("fragment not allowed in a DoH URL (its TLS name is its host)")
	case u.Hostname() == "":
		return "", errors.New("missing host")
	case !isHostName(u.Hostname()) && !isIP(u.Hostname()):
		return "", fmt.Errorf("invalid host %q", u.Hostname())
	case u.Path == "" || u.Path == "/":
		return "", errors.New("missing path (as in https://dns.example/dns-query)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "", fmt.Errorf("invalid port %q", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", errors.New(`invalid port ""`)
	}
	return u.String(), nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isZone reports whether z can name an interface: letters, digits, and
// the punctuation interface names use.
func isZone(z string) bool {
	for _, c := range []byte(z) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// isHostName reports whether s is an LDH host name (letters, digits and
// hyphens in labels of 1 to 63 characters, not starting or ending with a
// hyphen), optionally with a final dot.
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// maxSystemServers is how many nameserver lines the C library and Go's
// resolver use (MAXNS); further lines are never asked by build tools.
const maxSystemServers = 3

// SystemServers lists the resolvers of a resolv.conf file, as the C library
// reads it: the first three valid nameserver lines, on port 53. Lines the C
// library would ignore (not an IP address) are skipped. A file without any
// is an error: there is no system resolver to judge.
func SystemServers(path string) ([]Server, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	var out []Server
	for _, ns := range cfg.Servers {
		if len(out) == maxSystemServers {
			break
		}
		if !isIP(ns) {
			continue
		}
		srv, err := ParseServer("udp://" + net.JoinHostPort(ns, cfg.Port))
		if err != nil {
			continue // a zone ParseServer refuses; the C library would not use it either
		}
		srv.Spec, srv.System = "system udp://"+srv.Addr, true
		out = append(out, srv)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolv.conf %s: no nameserver", path)
	}
	return out, nil
}
