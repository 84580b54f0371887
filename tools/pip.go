package tools

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// pipScript asks the Python pip runs under for pip's version, the certifi
// bundle pip uses (a distribution's pip may point it at the system store),
// pip's default index and the OpenSSL Python links.
const pipScript = `import json, ssl, sys
out = {"openssl": ssl.OPENSSL_VERSION}
try:
    import pip
    out["pip"] = pip.__version__
    from pip._vendor import certifi
    out["certifi"] = certifi.where()
    from pip._internal.models.index import PyPI
    out["index"] = PyPI.simple_url
    out["files"] = "https://" + PyPI.file_storage_domain + "/"
except Exception as e:
    out["error"] = repr(e)
print(json.dumps(out))`

// pipInfo is pipScript's answer.
type pipInfo struct {
	OpenSSL string `json:"openssl"`
	Pip     string `json:"pip"`
	Certifi string `json:"certifi"`
	Index   string `json:"index"`
	Files   string `json:"files"`
	Error   string `json:"error"`
}

// pipSections are the pip.conf sections that apply to pip download and
// install.
var pipSections = []string{"global", "install", "download"}

// pipTool reads pip's TLS settings. requests takes REQUESTS_CA_BUNDLE (or
// CURL_CA_BUNDLE) over pip's own cert; PIP_CERT over pip.conf; without
// any, the certifi bundle. trusted-host turns verification off per host.
func (d *discoverer) pipTool(ctx context.Context) Tool {
	t := Tool{Name: Pip, Flavour: FlavourOpenSSL, OpenSSL3: true}
	var info pipInfo
	out, installed, err := d.askInstalled(ctx, "python3", "-c", pipScript)
	if err == nil && installed {
		err = decodeJSON(out, &info)
	}
	switch {
	case err != nil:
		t.Notes = append(t.Notes, err.Error())
	case info.Error != "":
		t.Notes = append(t.Notes, "python3 has no usable pip: "+info.Error)
	}
	if info.Pip != "" {
		t.Version = info.Pip
		t.OpenSSL3 = !strings.Contains(info.OpenSSL, "OpenSSL 1.")
	}

	keys := func(name string) []string {
		var out []string
		for _, s := range pipSections {
			out = append(out, s+"."+name)
		}
		return out
	}
	switch s, ok := d.env("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"); {
	case ok:
		t.Store = d.bundleStore(s.Name, s, s.Value)
	default:
		if s, ok := d.last("pip", append(keys("cert"), "PIP_CERT")...); ok {
			t.Store = d.bundleStore("pip's cert", s, s.Value)
		} else if info.Certifi != "" {
			t.Store = d.bundleStore("pip's certifi bundle", Setting{Name: "certifi", Value: info.Certifi, Source: "pip " + info.Pip}, info.Certifi)
			t.Store.By = nil
		} else {
			t.Store = Store{Description: "pip's certifi bundle (not found)", Err: "pip is not installed"}
		}
		if truststore(info.Pip) {
			// pip 24.2 and later verify with the system store and
			// certifi together (truststore).
			sys := d.envStore()
			t.Store.Certs = append(t.Store.Certs, sys.Certs...)
			t.Store.Description = sys.Description + " + " + t.Store.Description + ", through truststore"
		}
	}

	for _, s := range d.settings["pip"] {
		k := strings.ToLower(s.Key)
		_, name, _ := strings.Cut(k, ".")
		if strings.HasPrefix(k, "pip_") {
			name = strings.ReplaceAll(strings.TrimPrefix(k, "pip_"), "_", "-")
		}
		set := Setting{Name: s.Key, Value: s.Value, Source: s.Source}
		switch name {
		case "trusted-host":
			for _, v := range strings.Fields(s.Value) {
				if h, ok := hostOf("https://"+v, ""); ok {
					port := 0
					if strings.Contains(v, ":") {
						port = h.Port
					}
					t.Overrides = append(t.Overrides, Override{Pattern: h.Host, Port: port, Off: &set})
				}
			}
		case "index-url", "extra-index-url", "find-links":
			for _, u := range strings.Fields(s.Value) {
				if h, ok := hostOf(u, s.Key+" ("+s.Source+")"); ok {
					t.addHost(h)
				}
			}
		case "proxy":
			if s.Value != "" {
				t.Proxy = &set
			}
		}
	}
	if _, ok := d.last("pip", append(keys("index-url"), "PIP_INDEX_URL")...); !ok {
		for _, u := range []string{info.Index, info.Files} {
			if h, ok := hostOf(u, fmt.Sprintf("pip's default index (pip %s)", info.Pip)); ok {
				t.addHost(h)
			}
		}
	}
	if t.Proxy == nil {
		t.Proxy = d.proxyEnv("HTTPS_PROXY", "https_proxy")
	}
	return t
}

// truststore reports whether a pip version verifies with the system
// store by default (24.2 and later).
func truststore(version string) bool {
	major, rest, _ := strings.Cut(version, ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil && (ma > 24 || ma == 24 && mi >= 2)
}
