package tools

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// gitTool reads git's TLS settings. GIT_SSL_CAINFO and GIT_SSL_NO_VERIFY
// override the config; http.<url>.* settings apply to the hosts their URL
// matches; without sslCAInfo, libcurl verifies with the system store.
func (d *discoverer) gitTool(ctx context.Context) Tool {
	t := Tool{Name: Git, Flavour: FlavourOpenSSL, OpenSSL3: true, Store: d.system()}
	out, installed, err := d.askInstalled(ctx, "git", "--version")
	switch {
	case err != nil:
		t.Notes = append(t.Notes, err.Error())
	case installed:
		t.Version = strings.TrimPrefix(strings.TrimSpace(string(out)), "git version ")
		if dir, _, err := d.askInstalled(ctx, "git", "--exec-path"); err == nil {
			helper := filepath.Join(strings.TrimSpace(string(dir)), "git-remote-https")
			if slices.ContainsFunc(libraries(helper), func(l string) bool { return strings.HasPrefix(l, "libcurl-gnutls") }) {
				t.Flavour = FlavourGnuTLS
			}
		}
	}
	if t.Flavour == FlavourGnuTLS {
		t.Store.Description = strings.Replace(t.Store.Description, "system store", "system store, through GnuTLS", 1)
	}

	// The config, lowest precedence first; per-URL settings become
	// overrides of the hosts their URL names.
	perHost := map[string]*Override{}
	var order []string
	for _, s := range d.settings["git"] {
		section, sub, name := splitKey(s.Key)
		set := Setting{Name: gitName(section, sub, name), Value: s.Value, Source: s.Source}
		switch {
		case section == "http" && sub == "" && name == "sslverify" && gitFalse(s.Value):
			t.Verify = &set
		case section == "http" && sub == "" && name == "sslverify":
			t.Verify = nil
		case section == "http" && sub == "" && name == "sslcainfo" && s.Value != "":
			t.Store = d.bundleStore("http.sslCAInfo", set, s.Value)
		case section == "http" && sub == "" && name == "proxy" && s.Value != "":
			t.Proxy = &set
		case section == "http" && sub != "" && (name == "sslverify" || name == "sslcainfo"):
			h, ok := hostOf(sub, "")
			if !ok {
				continue
			}
			key := h.Key()
			o := perHost[key]
			if o == nil {
				o = &Override{Pattern: h.Host, Port: h.Port}
				perHost[key] = o
				order = append(order, key)
			}
			if name == "sslverify" {
				o.Off = nil
				if gitFalse(s.Value) {
					o.Off = &set
				}
			} else {
				st := d.bundleStore("http.<url>.sslCAInfo", set, s.Value)
				o.Store = &st
			}
		case section == "remote" && (name == "url" || name == "pushurl"):
			if h, ok := hostOf(s.Value, set.Name+" ("+s.Source+")"); ok {
				t.addHost(h)
			}
		case section == "url" && (name == "insteadof" || name == "pushinsteadof"):
			if h, ok := hostOf(sub, set.Name+" ("+s.Source+")"); ok {
				t.addHost(h)
			}
		}
	}
	if s, ok := d.env("GIT_SSL_CAINFO"); ok {
		// It overrides every sslCAInfo of the config.
		t.Store = d.bundleStore("GIT_SSL_CAINFO", s, s.Value)
		for _, o := range perHost {
			o.Store = nil
		}
	}
	if v, ok := d.lookup("GIT_SSL_NO_VERIFY"); ok {
		t.Verify = &Setting{Name: "GIT_SSL_NO_VERIFY", Value: v, Source: fromEnv}
	}
	for _, k := range order {
		if o := perHost[k]; o.Store != nil || o.Off != nil {
			t.Overrides = append(t.Overrides, *o)
		}
	}
	if t.Proxy == nil {
		t.Proxy = d.proxyEnv("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
	}
	return t
}

// lookup reads a variable that counts as set even when empty
// (GIT_SSL_NO_VERIFY); without the full environment an empty one cannot
// be told from an unset one.
func (d *discoverer) lookup(name string) (string, bool) {
	if d.opts.Env != nil {
		for _, kv := range d.opts.Env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
	v := d.getenv(name)
	return v, v != ""
}

// splitKey splits git's section.sub.name; sub may hold dots (a URL).
func splitKey(key string) (section, sub, name string) {
	section, rest, _ := strings.Cut(key, ".")
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		return section, rest[:i], rest[i+1:]
	}
	return section, "", rest
}

// gitName renders a key the way people write it: http.<url>.sslVerify.
func gitName(section, sub, name string) string {
	if spelt, ok := map[string]string{"sslverify": "sslVerify", "sslcainfo": "sslCAInfo", "insteadof": "insteadOf", "pushinsteadof": "pushInsteadOf", "pushurl": "pushURL"}[name]; ok {
		name = spelt
	}
	if sub == "" {
		return section + "." + name
	}
	return section + "." + sub + "." + name
}

// gitFalse reads a git boolean set to false: "", false, no, off, 0.
func gitFalse(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	if n, err := strconv.Atoi(v); err == nil {
		return n == 0
	}
	return v == "" || v == "false" || v == "no" || v == "off"
}
