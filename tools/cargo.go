package tools

import (
	"context"
	"strings"
)

// cargoTool reads Cargo's TLS settings: http.cainfo (CARGO_HTTP_CAINFO)
// replaces the system store libcurl's OpenSSL otherwise reads
// (SSL_CERT_FILE honoured); Cargo has no switch that turns verification
// off.
func (d *discoverer) cargoTool(ctx context.Context) Tool {
	t := Tool{Name: Cargo, Flavour: FlavourOpenSSL, OpenSSL3: true, Store: d.envStore()}
	out, installed, err := d.askInstalled(ctx, "cargo", "--version")
	switch {
	case err != nil:
		t.Notes = append(t.Notes, err.Error())
	case installed:
		t.Version = strings.TrimPrefix(strings.TrimSpace(string(out)), "cargo ")
	}
	if s, ok := d.last("cargo", "http.cainfo"); ok && s.Value != "" {
		if s.Source == fromEnv {
			s.Name = "CARGO_HTTP_CAINFO"
		}
		t.Store = d.bundleStore("http.cainfo", s, s.Value)
	}
	for _, s := range d.settings["cargo"] {
		parts := strings.Split(s.Key, ".")
		switch {
		case len(parts) == 3 && parts[0] == "registries" && parts[2] == "index",
			len(parts) == 2 && parts[0] == "registry" && parts[1] == "index",
			len(parts) == 3 && parts[0] == "source" && parts[2] == "registry":
			if h, ok := hostOf(s.Value, s.Key+" ("+s.Source+")"); ok {
				t.addHost(h)
			}
		case s.Key == "http.proxy" && s.Value != "":
			t.Proxy = &Setting{Name: s.Key, Value: s.Value, Source: s.Source}
		}
	}
	if t.Proxy == nil {
		t.Proxy = d.proxyEnv("HTTPS_PROXY", "https_proxy", "http_proxy")
	}
	return t
}
