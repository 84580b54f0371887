package tools

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mitmwatch/mitmwatch/trust"
)

// dockerTool reads what dockerd pulls with: the system store, plus the CA
// files of /etc/docker/certs.d/<host[:port]>/ for that registry;
// insecure-registries turns verification off (and allows plain HTTP).
// dockerd's own environment (SSL_CERT_FILE, proxies) is the service's, not
// visible here.
func (d *discoverer) dockerTool(ctx context.Context) Tool {
	t := Tool{Name: Docker, Flavour: FlavourGo, Store: d.system()}
	out, installed, err := d.askInstalled(ctx, "docker", "--version")
	switch {
	case err != nil:
		t.Notes = append(t.Notes, err.Error())
	case installed:
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "Docker version ")
		v, _, _ = strings.Cut(v, ",")
		t.Version = v
	}
	for _, s := range d.settings["docker"] {
		set := Setting{Name: s.Key, Value: s.Value, Source: s.Source}
		switch s.Key {
		case "insecure-registries":
			if h, ok := hostOf("https://"+strings.TrimPrefix(strings.TrimPrefix(s.Value, "https://"), "http://"), s.Key+" ("+s.Source+")"); ok && !strings.Contains(strings.TrimPrefix(s.Value, "http://"), "/") {
				t.addHost(h)
				t.Overrides = append(t.Overrides, Override{Pattern: h.Host, Port: h.Port, Off: &set, Plain: true})
			}
		case "registry-mirrors":
			if h, ok := hostOf(s.Value, s.Key+" ("+s.Source+")"); ok {
				t.addHost(h)
			}
		case "proxies.https-proxy":
			t.Proxy = &set
		}
	}
	for _, dir := range []string{d.sys("/etc/docker/certs.d"), filepath.Join(d.getenv("XDG_CONFIG_HOME"), "docker", "certs.d")} {
		t.Overrides = append(t.Overrides, d.certsD(dir, t.Store)...)
	}
	return t
}

// certsD reads dockerd's per-registry CA directories: each <host[:port]>
// holds *.crt files added to the system store for that registry.
func (d *discoverer) certsD(dir string, base Store) []Override {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []Override
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		host, port := e.Name(), 443
		if h, p, ok := strings.Cut(e.Name(), ":"); ok {
			n, err := strconv.Atoi(p)
			if err != nil {
				continue
			}
			host, port = h, n
		}
		files, _ := filepath.Glob(filepath.Join(dir, e.Name(), "*.crt"))
		st := base
		st.Certs = append([]trust.Block(nil), base.Certs...)
		for _, f := range files {
			if certs, err := trust.LoadBlocks(f); err == nil {
				st = withExtra(st, "certs.d", Setting{Name: "certs.d", Value: f, Source: dir}, certs)
			}
		}
		if len(files) > 0 {
			out = append(out, Override{Pattern: host, Port: port, Store: &st})
		}
	}
	return out
}
