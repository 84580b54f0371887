package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
)

// daemonConfig is the part of dockerd's daemon.json the audit reads.
type daemonConfig struct {
	InsecureRegistries []string `json:"insecure-registries"`
	RegistryMirrors    []string `json:"registry-mirrors"`
	Proxies            struct {
		HTTP  string `json:"http-proxy"`
		HTTPS string `json:"https-proxy"`
	} `json:"proxies"`
}

// clientConfig is the part of the docker CLI's config.json the audit
// reads. Its auths hold secrets and are never looked at.
type clientConfig struct {
	Proxies map[string]struct {
		HTTP  string `json:"httpProxy"`
		HTTPS string `json:"httpsProxy"`
	} `json:"proxies"`
}

// dockerChecks audits dockerd's daemon.json (the system one with AllUsers,
// the rootless one always) and the CLI's proxies.
func (a *auditor) dockerChecks(context.Context) *part {
	p := &part{}
	var daemons []string
	if a.opts.AllUsers {
		daemons = append(daemons, a.sys("/etc/docker/daemon.json"))
	}
	if a.xdg != "" {
		daemons = append(daemons, filepath.Join(a.xdg, "docker", "daemon.json"))
	}
	for _, f := range daemons {
		data, ok := p.load(f)
		if !ok {
			continue
		}
		var cfg daemonConfig
		if err := decodeJSON(data, &cfg); err != nil {
			p.warn(fmt.Sprintf("%s: %v", f, err))
			continue // dockerd refuses to start with it
		}
		judgeDaemon(p, f, cfg, jsonLines(data))
	}

	dir := a.env.get("DOCKER_CONFIG")
	if dir == "" && a.home != "" {
		dir = filepath.Join(a.home, ".docker")
	}
	if dir != "" {
		f := filepath.Join(dir, "config.json")
		if data, ok := p.load(f); ok {
			var cfg clientConfig
			if err := decodeJSON(data, &cfg); err != nil {
				p.warn(fmt.Sprintf("%s: %v", f, err))
			} else {
				lines := jsonLines(data)
				why := "docker sends registry traffic through this proxy (and passes it into builds and containers); if it inspects TLS, install its CA at /etc/docker/certs.d/<registry>/ca.crt, never insecure-registries"
				for _, host := range slices.Sorted(maps.Keys(cfg.Proxies)) {
					px := cfg.Proxies[host]
					for _, kv := range [][2]string{{"httpProxy", px.HTTP}, {"httpsProxy", px.HTTPS}} {
						if kv[1] != "" {
							key := "proxies." + host + "." + kv[0]
							p.add(proxyFinding("docker", key, kv[1], at(f, lineOr(lines, key)), why))
						}
					}
				}
			}
		}
	}
	return p
}

func judgeDaemon(p *part, f string, cfg daemonConfig, lines map[string]int) {
	for i, r := range cfg.InsecureRegistries {
		src := at(f, lineOr(lines, fmt.Sprintf("insecure-registries[%d]", i), "insecure-registries"))
		p.set("docker", "insecure-registries", r, src)
		what := r
		if strings.Contains(r, "/") && !strings.Contains(r, "://") {
			what = "every registry in " + r
		} else if h, ok := hostPort(r, "insecure-registries", src); ok {
			p.hosts = append(p.hosts, h)
		}
		p.add(Finding{Tool: "docker", Setting: "insecure-registries", Value: redactURLs(r), Source: src, Severity: detector.Critical,
			Why: fmt.Sprintf("dockerd pulls from %s over plain http, or over https without verifying the certificate: images can be swapped in transit", redactURLs(what)),
			Fix: "Give the registry a certificate from your internal CA and put that CA at /etc/docker/certs.d/<host:port>/ca.crt; then remove it from insecure-registries and restart dockerd."})
	}
	for i, m := range cfg.RegistryMirrors {
		src := at(f, lineOr(lines, fmt.Sprintf("registry-mirrors[%d]", i), "registry-mirrors"))
		p.set("docker", "registry-mirrors", m, src)
		if h, ok := urlHost(m, "registry-mirrors", src); ok {
			p.hosts = append(p.hosts, h)
		}
		if plainHTTP(m) {
			p.add(Finding{Tool: "docker", Setting: "registry-mirrors", Value: redactURLs(m), Source: src, Severity: detector.Critical,
				Why: "images are pulled through this mirror over plain http: anything on the path can serve other images for unpinned tags",
				Fix: "Serve the mirror over https with a certificate from your internal CA, installed at /etc/docker/certs.d/<host:port>/ca.crt."})
		}
	}
	why := "dockerd pulls through this proxy; if it inspects TLS, install its CA in the system store (dockerd uses it) or /etc/docker/certs.d, never insecure-registries"
	for _, kv := range [][2]string{{"proxies.http-proxy", cfg.Proxies.HTTP}, {"proxies.https-proxy", cfg.Proxies.HTTPS}} {
		if kv[1] != "" {
			p.set("docker", kv[0], kv[1], at(f, lineOr(lines, kv[0])))
		}
	}
	if v := cfg.Proxies.HTTP; v != "" {
		p.add(proxyFinding("docker", "proxies.http-proxy", v, at(f, lineOr(lines, "proxies.http-proxy")), why))
	}
	if v := cfg.Proxies.HTTPS; v != "" {
		p.add(proxyFinding("docker", "proxies.https-proxy", v, at(f, lineOr(lines, "proxies.https-proxy")), why))
	}
}

func lineOr(lines map[string]int, keys ...string) int {
	for _, k := range keys {
		if n, ok := lines[k]; ok {
			return n
		}
	}
	return 1
}

// decodeJSON decodes a JSON config, naming the line of a syntax error.
func decodeJSON(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("line %d: %v", 1+bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n")), err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("line %d: %s: expected %s, got %s", 1+bytes.Count(data[:min(int(te.Offset), len(data))], []byte("\n")), te.Field, te.Type, te.Value)
	}
	return err
}

// jsonLines maps the paths of a JSON document's object keys
// ("proxies.http-proxy") and array elements ("registry-mirrors[0]") to
// the line they are written on.
func jsonLines(data []byte) map[string]int {
	type frame struct {
		obj     bool
		wantKey bool
		key     string
		idx     int
		path    string
	}
	lines := map[string]int{}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	join := func(path, k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	var stack []frame
	done := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].obj {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].idx++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return lines
		}
		end := dec.InputOffset()
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		path := ""
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if top.obj && top.wantKey {
				top.key, _ = tok.(string)
				top.wantKey = false
				lines[join(top.path, top.key)] = lineAt(end)
				continue
			}
			if top.obj {
				path = join(top.path, top.key)
			} else {
				path = fmt.Sprintf("%s[%d]", top.path, top.idx)
				lines[path] = lineAt(end)
			}
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{obj: d == '{', wantKey: d == '{', path: path})
			continue
		}
		done()
	}
}
