package tools

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/toolchain"
	"github.com/mitmwatch/mitmwatch/trust"
)

// nodeScript asks Node for its version, its OpenSSL and the roots it
// bundles (tls.rootCertificates: the Mozilla copy fixed at its release,
// whatever NODE_EXTRA_CA_CERTS adds), and whether it was built to use
// OpenSSL's store instead: a line of JSON, then the roots as PEM, which
// decode in a fraction of the time the same ~200 KB take as JSON strings.
const nodeScript = `const tls = require("tls");
console.log(JSON.stringify({version: process.version, openssl: process.versions.openssl,
  roots: tls.rootCertificates.length, defStore: !!process.config.variables.openssl_use_def_ca_store}));
console.log(tls.rootCertificates.join("\n"))`

// nodeInfo is the first line of nodeScript's answer.
type nodeInfo struct {
	Version  string `json:"version"`
	OpenSSL  string `json:"openssl"`
	Roots    int    `json:"roots"`
	DefStore bool   `json:"defStore"`
}

// npmTool reads npm's TLS settings: cafile or ca replace Node's roots,
// strict-ssl=false and NODE_TLS_REJECT_UNAUTHORIZED=0 turn verification
// off, NODE_EXTRA_CA_CERTS adds to Node's bundled roots (not to cafile),
// and --use-openssl-ca in NODE_OPTIONS swaps them for OpenSSL's store.
func (d *discoverer) npmTool(ctx context.Context) Tool {
	t := Tool{Name: NPM, Flavour: FlavourNode, OpenSSL3: true}
	var node nodeInfo
	// The roots, ~200 KB of PEM, are read only where the snapshot does not
	// keep them decoded.
	out, installed, err := d.askInstalledOutput(ctx, trust.KeepsText, "node", "-e", nodeScript)
	var roots []trust.Block
	if out.Known {
		var kept bool
		if roots, kept = trust.KeptText(out.Sum, out.Size); !kept {
			// The snapshot changed between the two looks: read it whole.
			out, installed, err = d.askInstalledOutput(ctx, nil, "node", "-e", nodeScript)
		}
	}
	if !out.Known {
		roots = trust.Blocks(out.Whole)
	}
	if err == nil && installed {
		err = decodeJSON(out.First, &node)
	}
	if err != nil {
		t.Notes = append(t.Notes, err.Error())
	}
	if node.OpenSSL != "" {
		t.OpenSSL3 = !strings.HasPrefix(node.OpenSSL, "1.")
	}
	if out, ok, err := d.askInstalled(ctx, "npm", "--version"); err != nil {
		t.Notes = append(t.Notes, err.Error())
	} else if ok {
		t.Version = strings.TrimSpace(string(out))
		if node.Version != "" {
			t.Version += " (node " + node.Version + ")"
		}
	}

	nodeOpts := " " + d.getenv("NODE_OPTIONS") + " "
	switch {
	case strings.Contains(nodeOpts, " --use-openssl-ca ") || node.DefStore && !strings.Contains(nodeOpts, " --use-bundled-ca "):
		t.Store = d.envStore()
		t.Store.Description = "OpenSSL's store, as Node reads it: " + t.Store.Description
	default:
		t.Store = Store{Description: "Node's bundled roots"}
		if node.Version != "" {
			t.Store.Description += fmt.Sprintf(" (%s, %d)", node.Version, node.Roots)
		}
		if node.Version != "" {
			t.Store.Certs = certsOf(roots)
		}
	}
	if s, ok := d.env("NODE_EXTRA_CA_CERTS"); ok {
		if certs, err := trust.LoadBlocks(s.Value); err != nil {
			// Node warns and carries on without them.
			t.Notes = append(t.Notes, "Node ignores NODE_EXTRA_CA_CERTS: "+err.Error())
		} else {
			t.Store = withExtra(t.Store, "NODE_EXTRA_CA_CERTS", s, certs)
		}
	}
	if s, ok := d.last("npm", "cafile"); ok && s.Value != "" && s.Value != "null" {
		t.Store = d.bundleStore("npm's cafile", s, s.Value)
	} else if s, ok := d.last("npm", "ca"); ok && s.Value != "" && s.Value != "null" {
		certs := parseInline(s.Value)
		s.Value = "(inline)"
		t.Store = Store{Description: "npm's inline ca (" + s.Source + ")", Certs: certs, By: &s}
	}
	if s, ok := d.last("npm", "strict-ssl"); ok && npmFalse(s.Value) {
		t.Verify = &s
	}
	if v := d.getenv("NODE_TLS_REJECT_UNAUTHORIZED"); v == "0" {
		t.Verify = &Setting{Name: "NODE_TLS_REJECT_UNAUTHORIZED", Value: v, Source: fromEnv}
	}

	// npm's built-in default applies unless a setting names the registry
	// (the settings below add that one). Starting npm to learn it costs
	// more than a whole round of probes, so the real npm's answer is
	// cached per installation.
	switch {
	case d.npmRegistrySet():
	case d.opts.Run == nil:
		hosts, err := toolchain.NPMDefault(ctx, toolchain.Options{})
		if err != nil {
			t.Notes = append(t.Notes, err.Error())
		}
		for _, h := range hosts {
			t.addHost(Host{Host: h.Host, Port: h.Port, Scheme: "https", Source: h.Source})
		}
	default:
		if out, ok, err := d.ask(ctx, "npm", "config", "get", "registry"); err != nil {
			t.Notes = append(t.Notes, err.Error())
		} else if ok {
			if h, ok := hostOf(string(out), "npm config get registry"); ok {
				t.addHost(h)
			}
		}
	}
	for _, s := range d.settings["npm"] {
		if s.Key == "registry" || strings.HasSuffix(s.Key, ":registry") {
			if h, ok := hostOf(s.Value, s.Key+" ("+s.Source+")"); ok {
				t.addHost(h)
			}
		}
	}
	if s, ok := d.last("npm", "https-proxy", "proxy"); ok && s.Value != "" && s.Value != "null" && s.Value != "false" {
		t.Proxy = &s
	} else {
		t.Proxy = d.proxyEnv("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
	}
	return t
}

// npmFalse reads an npm boolean set to false.
func npmFalse(v string) bool {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f == 0
	}
	return v == "" || v == "false" || v == "null"
}

// npmRegistrySet reports whether a setting names npm's registry, so that
// only npm itself knows which one applies.
func (d *discoverer) npmRegistrySet() bool {
	return slices.ContainsFunc(d.settings["npm"], func(s audit.Setting) bool {
		return s.Key == "registry" // a scope's registry leaves the default in place
	})
}
