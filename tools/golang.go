package tools

import (
	"context"
	"strings"

	"github.com/mitmwatch/mitmwatch/toolchain"
)

// goTool reads the go command's module settings: it verifies with the
// system store (SSL_CERT_FILE and SSL_CERT_DIR honoured), fetches through
// GOPROXY and GOSUMDB, directly from the hosts GOPRIVATE and GONOPROXY
// name, and without verification (falling back to plain HTTP) from those
// GOINSECURE matches.
func (d *discoverer) goTool(ctx context.Context) Tool {
	t := Tool{Name: Go, Flavour: FlavourGo, Store: d.envStore()}
	out, installed, err := d.askInstalled(ctx, "go", "env", "GOVERSION")
	switch {
	case err != nil:
		t.Notes = append(t.Notes, err.Error())
	case installed:
		t.Version = strings.TrimSpace(string(out))
	}
	if s, ok := d.last("go", "GOPROXY"); ok {
		for _, entry := range strings.FieldsFunc(s.Value, func(r rune) bool { return r == ',' || r == '|' }) {
			for _, h := range toolchain.ParseGOPROXY(entry) {
				t.Hosts = append(t.Hosts, Host{Host: h.Host, Port: h.Port, Scheme: scheme(entry), Source: "GOPROXY (" + s.Source + ")"})
			}
		}
	}
	if s, ok := d.last("go", "GOSUMDB"); ok {
		for _, h := range toolchain.ParseGOSUMDB(s.Value) {
			sch := "https"
			if f := strings.Fields(s.Value); len(f) == 2 {
				sch = scheme(f[1])
			}
			t.Hosts = append(t.Hosts, Host{Host: h.Host, Port: h.Port, Scheme: sch, Source: "GOSUMDB (" + s.Source + ")"})
		}
	}
	for _, key := range []string{"GOPRIVATE", "GONOPROXY", "GOINSECURE"} {
		if s, ok := d.last("go", key); ok {
			for _, p := range strings.Split(s.Value, ",") {
				first, _, _ := strings.Cut(strings.TrimSpace(p), "/")
				if first == "" {
					continue
				}
				if key == "GOINSECURE" {
					t.Overrides = append(t.Overrides, Override{Pattern: first, Plain: true,
						Off: &Setting{Name: "GOINSECURE", Value: s.Value, Source: s.Source}})
				}
				if !strings.ContainsAny(first, "*?[\\") && strings.Contains(first, ".") {
					t.addHost(Host{Host: strings.ToLower(first), Port: 443, Scheme: "https", Source: key + " (" + s.Source + ")"})
				}
			}
		}
	}
	t.Proxy = d.proxyEnv("HTTPS_PROXY", "https_proxy")
	return t
}

// scheme is the scheme of a URL a setting names: http for http://,
// https for anything else the tools would take as https.
func scheme(raw string) string {
	raw = strings.TrimSpace(raw)
	for _, prefix := range []string{"sparse+", "registry+"} {
		raw = strings.TrimPrefix(raw, prefix)
	}
	if len(raw) >= 7 && strings.EqualFold(raw[:7], "http://") {
		return "http"
	}
	return "https"
}

// hostOf is the host an http or https URL names, with its scheme.
func hostOf(raw, source string) (Host, bool) {
	trimmed := strings.TrimSpace(raw)
	for _, prefix := range []string{"sparse+", "registry+"} {
		trimmed = strings.TrimPrefix(trimmed, prefix)
	}
	hs := toolchain.ParseRegistry(trimmed, "")
	if len(hs) == 0 {
		return Host{}, false
	}
	return Host{Host: hs[0].Host, Port: hs[0].Port, Scheme: scheme(trimmed), Source: source}, true
}

// addHost adds a host once, keeping the first source.
func (t *Tool) addHost(h Host) {
	for _, o := range t.Hosts {
		if o.Host == h.Host && o.Port == h.Port {
			return
		}
	}
	t.Hosts = append(t.Hosts, h)
}
