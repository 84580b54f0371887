package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
)

// A DoH reference given by name must be found without the resolver it is
// meant to check: should the system resolver deny the name (networks that
// block public DoH do) or steer it, the reference would fail or vanish
// exactly where it is needed. So the name is never looked up through the
// system: its bootstrap addresses are dialled, with SNI and verification
// for the name, and without them the other references given by address
// are asked (see Client.Bootstrap). A lie there costs nothing: the
// certificate, not the address, authenticates the server.

// publishedBootstrap holds the addresses public DoH operators publish for
// their endpoint names, so that the default reference needs no lookup.
// Google Public DNS: dns.google is served at its anycast addresses.
var publishedBootstrap = map[string][]netip.Addr{
	"dns.google": {
		netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4"),
		netip.MustParseAddr("2001:4860:4860::8888"), netip.MustParseAddr("2001:4860:4860::8844"),
	},
}

// WithBootstrap returns srv, an https:// resolver given by name, set to be
// reached at addrs instead of through any lookup.
func (srv Server) WithBootstrap(addrs []netip.Addr) (Server, error) {
	host := srv.dohHost()
	switch {
	case srv.Proto != "https":
		return Server{}, errors.New("bootstrap addresses apply only to https:// resolvers")
	case isIP(host):
		return Server{}, fmt.Errorf("bootstrap addresses are for a resolver given by name; %s is an address already", host)
	case len(addrs) == 0:
		return Server{}, errors.New("no bootstrap address")
	}
	for _, a := range addrs {
		if !a.IsValid() || a.IsUnspecified() || a.Zone() != "" {
			return Server{}, fmt.Errorf("invalid bootstrap address %q", a)
		}
	}
	srv.Bootstrap = slices.Clone(addrs)
	return srv, nil
}

// dohHost is the host name of an https:// resolver's URL, lower case; empty
// for other resolvers.
func (srv Server) dohHost() string {
	if srv.Proto != "https" {
		return ""
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
}

// direct reports whether srv is reached without looking anything up: by
// address, or a DoH server with an IP host or bootstrap addresses.
func (srv Server) direct() bool {
	if srv.Proto != "https" {
		return true
	}
	return isIP(srv.dohHost()) || len(srv.Bootstrap) > 0
}

// bootstrapError is why a DoH server given by name could not be found. It
// is a failure to resolve, whatever the bootstrap resolvers' own failures.
type bootstrapError struct{ msg string }

func (e *bootstrapError) Error() string             { return e.msg }
func (e *bootstrapError) Failure() detector.Failure { return detector.FailureDNS }

// learnBootstrap records the bootstrap addresses of an https:// server for
// the DoH transport's dialer.
func (c *Client) learnBootstrap(srv Server) {
	host := srv.dohHost()
	if host == "" || len(srv.Bootstrap) == 0 {
		return
	}
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	if c.pool.bootstrap == nil {
		c.pool.bootstrap = map[string][]netip.Addr{}
	}
	for _, a := range srv.Bootstrap {
		if !slices.Contains(c.pool.bootstrap[host], a) {
			c.pool.bootstrap[host] = append(c.pool.bootstrap[host], a)
		}
	}
}

// dialDoH connects the DoH transport to addr, the URL's host and port. An
// IP host is dialled as is; a name goes to its bootstrap addresses, or to
// those the Bootstrap resolvers give, in order until one connects. The
// transport then speaks TLS with SNI and verification for the name.
func (c *Client) dialDoH(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("doh: dial %s: %w", addr, err)
	}
	var d net.Dialer
	if isIP(host) {
		return d.DialContext(ctx, network, addr)
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	c.pool.mu.Lock()
	addrs := slices.Clone(c.pool.bootstrap[host])
	c.pool.mu.Unlock()
	if len(addrs) == 0 {
		if addrs, err = c.findDoH(ctx, host); err != nil {
			return nil, err
		}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("doh: %s at its bootstrap addresses: %w", host, errors.Join(errs...))
}

// findDoH asks the Bootstrap resolvers reached without a lookup, in order,
// for the addresses of a DoH server's name. The system's are never asked.
func (c *Client) findDoH(ctx context.Context, host string) ([]netip.Addr, error) {
	var why []string
	for _, srv := range c.Bootstrap {
		if srv.System || !srv.direct() {
			continue
		}
		a := c.Lookup(ctx, srv, host)
		if a.Answered() && len(a.Addrs) > 0 {
			return a.Addrs, nil
		}
		what := string(a.Failure)
		if a.Failure == detector.FailureNone {
			what = a.Rcode
		}
		why = append(why, fmt.Sprintf("%s: %s", srv.Spec, what))
	}
	if len(why) == 0 {
		return nil, &bootstrapError{fmt.Sprintf("doh: no bootstrap address for %s, and the system resolver under test is never asked (give bootstrap addresses, or an IP address in the URL)", host)}
	}
	return nil, &bootstrapError{fmt.Sprintf("doh: no bootstrap resolver found %s (%s)", host, strings.Join(why, "; "))}
}
