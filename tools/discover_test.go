package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/tools"
)

// fakeTools answers as installed tools would, without running any.
func fakeTools(t *testing.T, pki *lab.PKI, certifi string) func(ctx context.Context, name string, args ...string) ([]byte, error) {
	node, _ := json.Marshal(map[string]any{"version": "v20.20.2", "openssl": "3.0.19", "roots": 1})
	node = append(append(node, '\n'), pki.PublicRoot.PEM...)
	py, _ := json.Marshal(map[string]string{"openssl": "OpenSSL 3.0.19", "pip": "23.2.1", "certifi": certifi,
		"index": "https://index.lab.example/simple/", "files": "https://files.lab.example/"})
	return func(_ context.Context, name string, args ...string) ([]byte, error) {
		switch cmd := name + " " + strings.Join(args, " "); {
		case cmd == "go env GOVERSION":
			return []byte("go1.26.8\n"), nil
		case cmd == "git --version":
			return []byte("git version 2.39.5\n"), nil
		case cmd == "git --exec-path":
			return []byte("/nonexistent\n"), nil
		case name == "node":
			return node, nil
		case cmd == "npm --version":
			return []byte("11.19.1\n"), nil
		case cmd == "npm config get registry":
			return []byte("https://npm.lab.example/\n"), nil
		case name == "python3":
			return py, nil
		case cmd == "cargo --version":
			return []byte("cargo 1.95.0 (f2d3ce0bd 2026-03-21)\n"), nil
		}
		return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
}

// TestDiscover: each tool's store, switches, overrides, proxy and hosts
// come from its settings, its environment and what the tool says.
func TestDiscover(t *testing.T) {
	t.Parallel()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(rel string, data []byte) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	system := write("root/etc/ssl/certs/ca-certificates.crt", pki.SystemPEM())
	certifi := write("certifi/cacert.pem", pki.PublicRoot.PEM)
	corp := write("corp.pem", pki.EnterpriseRoot.PEM)
	write("root/etc/docker/certs.d/registry.lab.example:5000/ca.crt", pki.EnterpriseRoot.PEM)
	write("root/usr/local/share/ca-certificates/.keep", nil)
	env := map[string]string{"HTTPS_PROXY": "http://alice:pw@proxy.lab.example:3128", "NODE_EXTRA_CA_CERTS": corp}
	settings := []audit.Setting{
		{Tool: "go", Key: "GOPROXY", Value: "https://goproxy.lab.example,direct", Source: "go env"},
		{Tool: "go", Key: "GOPRIVATE", Value: "git.lab.example/*", Source: "environment"},
		{Tool: "go", Key: "GOINSECURE", Value: "*.insecure.lab.example", Source: "environment"},
		{Tool: "git", Key: "http.https://git.lab.example/.sslcainfo", Value: corp, Source: "~/.gitconfig:2"},
		{Tool: "git", Key: "http.https://old.lab.example/.sslverify", Value: "false", Source: "~/.gitconfig:4"},
		{Tool: "git", Key: "remote.origin.url", Value: "https://git.lab.example/app.git", Source: ".git/config:7"},
		{Tool: "npm", Key: "strict-ssl", Value: "false", Source: "~/.npmrc:1"},
		{Tool: "npm", Key: "@corp:registry", Value: "https://npm.corp.lab.example/", Source: "~/.npmrc:2"},
		{Tool: "pip", Key: "global.trusted-host", Value: "pypi.lab.example:8443", Source: "/etc/pip.conf:3"},
		{Tool: "pip", Key: "global.cert", Value: filepath.Join(dir, "gone.pem"), Source: "/etc/pip.conf:2"},
		{Tool: "cargo", Key: "registries.corp.index", Value: "sparse+https://crates.lab.example/index/", Source: "~/.cargo/config.toml:2"},
		{Tool: "docker", Key: "insecure-registries", Value: "mirror.lab.example:5000", Source: "/etc/docker/daemon.json:2"},
	}
	inv := tools.Discover(context.Background(), tools.Options{Settings: settings, Root: filepath.Join(dir, "root"),
		Getenv: func(k string) string { return env[k] }, Run: fakeTools(t, pki, certifi)})
	if inv.SystemBundle != system || !strings.Contains(inv.SystemInstall, "update-ca-certificates") {
		t.Errorf("system bundle %q, install %q", inv.SystemBundle, inv.SystemInstall)
	}
	type summary struct {
		Version, Store, Verify, Proxy string
		Hosts, Overrides, Notes       []string
	}
	got := map[tools.Name]summary{}
	for _, tl := range inv.Tools {
		s := summary{Version: tl.Version, Store: strings.ReplaceAll(tl.Store.Description, dir, "$D")}
		if tl.Store.Err != "" {
			s.Store += " ERR"
		}
		if tl.Verify != nil {
			s.Verify = tl.Verify.String()
		}
		if tl.Proxy != nil {
			s.Proxy = tl.Proxy.Value
		}
		for _, h := range tl.Hosts {
			s.Hosts = append(s.Hosts, h.Scheme+"://"+h.Key())
		}
		for _, o := range tl.Overrides {
			d := o.Pattern
			if o.Off != nil {
				d += " off"
			}
			if o.Plain {
				d += " plain"
			}
			if o.Store != nil {
				d += " store"
			}
			s.Overrides = append(s.Overrides, d)
		}
		got[tl.Name] = s
	}
	want := map[tools.Name]summary{
		tools.Go: {Version: "go1.26.8", Store: "system store ($D/root/etc/ssl/certs/ca-certificates.crt)", Proxy: "http://REDACTED@proxy.lab.example:3128",
			Hosts:     []string{"https://goproxy.lab.example:443", "https://git.lab.example:443"},
			Overrides: []string{"*.insecure.lab.example off plain"}},
		tools.Git: {Version: "2.39.5", Store: "system store ($D/root/etc/ssl/certs/ca-certificates.crt)", Proxy: "http://REDACTED@proxy.lab.example:3128",
			Hosts:     []string{"https://git.lab.example:443"},
			Overrides: []string{"git.lab.example store", "old.lab.example off"}},
		tools.NPM: {Version: "11.19.1 (node v20.20.2)", Store: "Node's bundled roots (v20.20.2, 1) + NODE_EXTRA_CA_CERTS $D/corp.pem (1)",
			Verify: "strict-ssl=false (~/.npmrc:1)", Proxy: "http://REDACTED@proxy.lab.example:3128",
			Hosts: []string{"https://npm.lab.example:443", "https://npm.corp.lab.example:443"}},
		tools.Pip: {Version: "23.2.1", Store: "pip's cert $D/gone.pem (/etc/pip.conf:2) ERR", Proxy: "http://REDACTED@proxy.lab.example:3128",
			Hosts:     []string{"https://index.lab.example:443", "https://files.lab.example:443"},
			Overrides: []string{"pypi.lab.example off"}},
		tools.Cargo: {Version: "1.95.0 (f2d3ce0bd 2026-03-21)", Store: "system store ($D/root/etc/ssl/certs/ca-certificates.crt)", Proxy: "http://REDACTED@proxy.lab.example:3128",
			Hosts: []string{"https://crates.lab.example:443"}},
		tools.Docker: {Store: "system store ($D/root/etc/ssl/certs/ca-certificates.crt)",
			Hosts:     []string{"https://mirror.lab.example:5000"},
			Overrides: []string{"mirror.lab.example off plain", "registry.lab.example store"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("discovered (-want +got):\n%s", d)
	}
	// The per-host CA of git and of dockerd's certs.d hold the corporate root.
	g, _ := inv.Tool(tools.Git)
	if s := g.StoreFor("git.lab.example", 443); len(s.Certs) != 1 || !bytes.Equal(s.Certs[0].DER, pki.EnterpriseRoot.Cert.Raw) {
		t.Errorf("git's store for git.lab.example: %s", s.Description)
	}
	dk, _ := inv.Tool(tools.Docker)
	if s := dk.StoreFor("registry.lab.example", 5000); !strings.Contains(s.Description, "certs.d") || !bytes.Equal(s.Certs[len(s.Certs)-1].DER, pki.EnterpriseRoot.Cert.Raw) {
		t.Errorf("dockerd's store for registry.lab.example:5000: %s", s.Description)
	}
}
