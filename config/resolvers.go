package config

import (
	"fmt"
	"net/netip"

	"go.yaml.in/yaml/v3"

	"github.com/mitmwatch/mitmwatch/resolver"
)

// referenceResolvers decodes dns.reference_resolvers. An entry is a spec
// ("tls://1.1.1.1:853") or a mapping {url: SPEC, bootstrap: [IP, ...]}
// that gives the addresses of a DoH resolver named by host name, so that
// finding it asks no resolver, least of all the system's under test.
func (d *decoder) referenceResolvers(n *yaml.Node, path string) []resolver.Server {
	var out []resolver.Server
	for i, item := range d.list(n, path) {
		item = d.resolve(item)
		p := index(path, i)
		var srv resolver.Server
		ok := false
		if item.Kind == yaml.MappingNode {
			srv, ok = d.bootstrapped(item, p)
		} else {
			srv, ok = one(d, item, p, parseResolver)
		}
		if ok {
			out = append(out, srv)
		}
	}
	return out
}

// bootstrapped decodes a reference resolver written as a mapping.
func (d *decoder) bootstrapped(n *yaml.Node, path string) (resolver.Server, bool) {
	var (
		srv   resolver.Server
		boot  []netip.Addr
		line  int
		errs  = len(d.errs)
		urlOK bool
	)
	present := d.fields(n, path, map[string]field{
		"url": func(v *yaml.Node, p string) { srv, urlOK = one(d, v, p, parseResolver) },
		"bootstrap": func(v *yaml.Node, p string) {
			boot, line = each(d, v, p, parseBootstrapAddr), v.Line
		},
	})
	switch {
	case present == nil:
		return srv, false
	case !present["url"]:
		d.errorf(n.Line, join(path, "url"), "required")
		return srv, false
	case !urlOK || len(d.errs) > errs:
		return srv, false
	case !present["bootstrap"]:
		return srv, true
	}
	srv, err := srv.WithBootstrap(boot)
	if err != nil {
		d.errorf(line, join(path, "bootstrap"), "%v", err)
		return srv, false
	}
	return srv, true
}

func parseBootstrapAddr(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.IsUnspecified() {
		return netip.Addr{}, fmt.Sprintf(`invalid bootstrap address %q (want an IP address, e.g. "8.8.8.8")`, s)
	}
	return a, ""
}
