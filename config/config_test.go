package config

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mitmwatch/mitmwatch"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/grade"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/resolver"
	"github.com/mitmwatch/mitmwatch/toolchain"
	"github.com/mitmwatch/mitmwatch/trust"
)

// TestBad maps every invalid config in testdata/bad to its exact error.
// Adding a file without a row here fails the test.
func TestBad(t *testing.T) {
	t.Parallel()
	const (
		tlsWant  = `(want "1.0", "1.1", "1.2" or "1.3")`
		portWant = "(want an integer from 1 to 65535)"
	)
	want := map[string]string{
		"address.yaml":               `3: targets[0].address: invalid address "proxy.lab.example:443" (want "ip:port", e.g. "192.0.2.10:443")`,
		"alias_expansion.yaml":       `5: too many values once aliases are expanded (more than 1048576)`,
		"alpn.yaml":                  `4: targets[0].expect.alpn[1]: invalid ALPN protocol "" (want 1 to 255 bytes)`,
		"cidr.yaml":                  `4: targets[0].expect.ip_ranges[1]: invalid range "192.0.2.0/33" (want a CIDR such as "192.0.2.0/24", or "provider:NAME")`,
		"passive_interface.yaml":     `2: passive.interface: empty (want an interface name such as "eth0")`,
		"grade_mode.yaml":            `2: grade.enabled: unknown mode "true" (want "auto", "always" or "never")`,
		"grade_test_key.yaml":        `4: grade.test_hosts.Wrong_Host: invalid test host key "Wrong_Host" (want 1 to 32 lower-case letters, digits and dashes, such as "expired")`,
		"grade_test_host.yaml":       `3: grade.test_hosts.expired: invalid test host "https://expired.lab.example/" (want "host:port" with a port from 1 to 65535, e.g. "expired.badssl.com:443")`,
		"grade_test_hosts_kind.yaml": `2: grade.test_hosts: want a mapping of keys to test hosts, got a list`,
		"passive_port.yaml":          `3: passive.ports[1]: invalid port "0" (want an integer from 1 to 65535)`,
		"passive_window.yaml":        `4: passive.window: invalid window "10ms" (want a duration from 1s to 24h0m0s, e.g. "1m")`,
		"path_samples.yaml":          `3: probe.path.samples: invalid samples "-1" (want an integer from 0, off, to 10)`,
		"path_ttl.yaml":              `4: probe.path.ttl: unknown mode "sometimes" (want "suspicious" or "always")`,
		"path_hops.yaml":             `3: probe.path.max_hops: invalid max_hops "64" (want an integer from 0, off, to 32)`,
		"interval.yaml":              `3: targets[0].interval: invalid interval "100ms" (want a duration from 1s to 24h0m0s, e.g. "5m")`,
		"dns_resolver.yaml":          `4: dns.reference_resolvers[1]: invalid resolver "dns.lab.example:53": missing scheme (want udp://, tcp://, tls:// or https://)`,
		"dns_bogon.yaml":             `3: dns.bogons[0]: invalid CIDR "10.0.0.0/40" (want e.g. "192.0.2.0/24" or "2001:db8::/32")`,
		"provider_empty.yaml":        "4: targets[0].expect.ip_ranges[0]: ranges: \"provider:github\": provider github has no ranges in the snapshot; run `mitmwatch ranges update` (snapshot built in)",
		"ranges_file_missing.yaml":   `1: ranges_file: ranges: open testdata/bad/no-such-ranges.json: no such file or directory`,
		"concurrency.yaml":           `2: probe.concurrency: invalid concurrency "1000" (want an integer from 1 to 256)`,
		"duplicate_field.yaml":       `4: probe.timeout: duplicate field (first at line 2)`,
		"duplicate_target.yaml":      `4: targets[2]: duplicate target proxy.lab.example:443 (first at testdata/bad/duplicate_target.yaml:2)`,
		"invalid_host.yaml":          `2: targets[0].host: invalid host "https://proxy.lab.example/" (want a DNS name or an IP address)`,
		"merge_key.yaml":             `7: targets[1].expect.<<: merge keys are not supported; use an alias for the whole value`,
		"missing_host.yaml":          `3: targets[1].host: required`,
		"multiple_documents.yaml":    `2: only one YAML document is allowed`,
		"pin_base64.yaml":            `3: allow.inspection_ca_spki_sha256[0]: pin "not base64!" is not base64: illegal base64 data at input byte 3`,
		"pin_length.yaml":            `6: targets[0].expect.ca_spki_sha256[1]: pin "q83vEjRWeJA=" is 8 bytes (want the 32 bytes of a SHA-256)`,
		"port_range.yaml":            `3: targets[0].port: invalid port "65536" ` + portWant,
		"sct.yaml":                   `4: targets[0].expect.sct: invalid boolean "maybe" (want true or false)`,
		"syntax.yaml":                `3: found character that cannot start any token`,
		"timeout.yaml":               `2: probe.timeout: invalid timeout "0s" (want a duration above 0 and at most 5m, e.g. "10s")`,
		"tls_min_version.yaml":       `4: targets[0].expect.tls_min_version: unknown TLS version "1.5" ` + tlsWant,
		"toolchain_mode.yaml":        `1: toolchain: unknown mode "maybe" (want "auto" or "none")`,
		"trust_empty.yaml":           `2: trust.public_roots: empty (want "mozilla" or a path to a PEM bundle)`,
		"trust_missing.yaml":         `3: trust.system_roots: PEM bundle testdata/bad/missing.pem: no such file or directory`,
		"trust_no_certs.yaml":        `2: trust.public_roots: PEM bundle testdata/bad/no-certs.pem: no certificates found`,
		"unknown_field.yaml":         `3: trust.publc_roots: unknown field`,
		"unknown_nested_field.yaml":  `4: targets[0].expect.ca_pins: unknown field`,
		"wrong_kind.yaml":            `2: targets: want a list, got a mapping`,
		// SSH targets and the checksum database.
		"protocol.yaml":             `3: targets[0].protocol: unknown protocol "sftp" (want "tls" or "ssh")`,
		"fallback.yaml":             `4: targets[0].fallback: invalid fallback "ssh.git.lab.example" (want "host:port", e.g. "ssh.github.com:443")`,
		"fallback_on_tls.yaml":      `3: targets[0].fallback: applies to protocol ssh only`,
		"ssh_pin.yaml":              `5: targets[0].expect.ssh_host_key_sha256[0]: fingerprint "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48" is not base64: illegal base64 data at input byte 3 (want "SHA256:" and the base64 ssh-keygen -l -E sha256 prints)`,
		"ssh_pin_on_tls.yaml":       `4: targets[0].expect.ssh_host_key_sha256: applies to protocol ssh only`,
		"tls_expect_on_ssh.yaml":    `5: targets[0].expect: ca_spki_sha256, tls_min_version, alpn and sct apply to TLS targets, not protocol ssh`,
		"sumdb_key.yaml":            `2: checksum_database.gosumdb: GOSUMDB "sum.lab.example": malformed verifier id (a database other than the default needs its key: name+hash+key)`,
		"sumdb_proxy.yaml":          `2: checksum_database.goproxy: GOPROXY entry "ftp://proxy.lab.example": want an http or https URL, direct or off`,
		"sumdb_max_age.yaml":        `2: checksum_database.max_age: invalid max_age "10s" (want 0 for never, or a duration of at least 1m, e.g. "24h")`,
		"duplicate_ssh_target.yaml": `4: targets[1]: duplicate target ssh://git.lab.example:22 (first at testdata/bad/duplicate_ssh_target.yaml:2)`,
		"many_errors.yaml": strings.Join([]string{
			`3: probe.concurrency: invalid concurrency "0" (want an integer from 1 to 256)`,
			`4: toolchain: unknown mode "sometimes" (want "auto" or "none")`,
			`7: targets[0].port: invalid port "http" ` + portWant,
			`9: targets[0].expect.tls_min_version: unknown TLS version "1.5" ` + tlsWant,
			`10: targets[0].expect.alpn: want a list, got "h2"`,
			`11: targets[1].host: required`,
			`13: targets[3]: duplicate target sum.lab.example:443 (first at testdata/bad/many_errors.yaml:12)`,
			`15: trust.system_roots: want a single value, got a list`,
		}, "\n"),
		"dns_bootstrap.yaml": strings.Join([]string{
			`4: dns.reference_resolvers[1].bootstrap: bootstrap addresses apply only to https:// resolvers`,
			`5: dns.reference_resolvers[2].bootstrap: bootstrap addresses are for a resolver given by name; 192.0.2.53 is an address already`,
			`6: dns.reference_resolvers[3].bootstrap[0]: invalid bootstrap address "dns.lab.example" (want an IP address, e.g. "8.8.8.8")`,
			`7: dns.reference_resolvers[4].url: required`,
			`8: dns.reference_resolvers[5].bootstap: unknown field`,
			`9: dns.reference_resolvers[6].bootstrap: no bootstrap address`,
			`10: dns.reference_resolvers[7].url: invalid resolver "dns.lab.example": missing scheme (want udp://, tcp://, tls:// or https://)`,
			`11: dns.reference_resolvers[8]: want a single value, got a list`,
		}, "\n"),
	}
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		w, ok := want[name]
		delete(want, name)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !ok {
				t.Fatalf("no expected error for %s", path)
			}
			// Every line of the message starts with the file name.
			w = path + ":" + strings.ReplaceAll(w, "\n", "\n"+path+":")
			cfg, err := Load(path, Options{})
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if err.Error() != w {
				t.Errorf("error:\n got %s\nwant %s", err, w)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != path {
				t.Errorf("error %v does not carry a *Error for %s", err, path)
			}
		})
	}
	for name := range want {
		t.Errorf("expected error for missing file testdata/bad/%s", name)
	}
}

func TestErrorsKeepCause(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/bad/trust_missing.yaml", Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not match fs.ErrNotExist", err)
	}
}

func TestTooManyErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("targets:\n")
	for i := range 60 {
		fmt.Fprintf(&b, "  - {host: h%d.lab.example, port: 0}\n", i)
	}
	_, err := Parse("rules.yaml", []byte(b.String()), Options{})
	lines := strings.Split(fmt.Sprint(err), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != "rules.yaml: 10 more errors not shown" {
		t.Errorf("got %d lines ending %q, want %d and a count of the rest", len(lines), lines[len(lines)-1], maxErrors+1)
	}
	if lines[0] != `rules.yaml:2: targets[0].port: invalid port "0" (want an integer from 1 to 65535)` {
		t.Errorf("first line %q", lines[0])
	}
}

func pin(t *testing.T, s string) detector.SPKI {
	t.Helper()
	var p detector.SPKI
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != len(p) {
		t.Fatalf("bad test pin %q", s)
	}
	copy(p[:], raw)
	return p
}

// ignorePools leaves the certificate pools to their own checks.
var ignorePools = cmp.Options{
	cmpopts.IgnoreFields(Config{}, "PublicRoots", "SystemRoots"), cmpopts.IgnoreUnexported(Config{}),
	cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{}),
}

func defaultResolvers(t *testing.T) []resolver.Server {
	t.Helper()
	var out []resolver.Server
	for _, s := range DefaultReferenceResolvers {
		srv, err := resolver.ParseServer(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, srv)
	}
	return out
}

func TestGood(t *testing.T) {
	t.Parallel()
	labPin := pin(t, "SCdCR3AqcrKvHCfvVkKULTTUDjAIGnfMd1xEXUQlycc=")
	inspectionPin := pin(t, "ac9xPwPy8dRIE0WyyGgU1cOq6lRIftsHUpcEtTtL5n4=")
	mirror := detector.Expectation{
		IPRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		ALPN:     []string{"http/1.1"},
	}
	defaults := func(source string, targets ...Target) *Config {
		return &Config{
			Source: source, Toolchain: true,
			PublicRootsSource: trust.Mozilla, SystemRootsSource: trust.System,
			Timeout: DefaultTimeout, Concurrency: DefaultConcurrency, Interval: DefaultInterval,
			Path:         probe.PathOptions{Samples: DefaultPathSamples, MaxHops: DefaultMaxHops},
			DNS:          DNS{ResolvConf: DefaultResolvConf, Reference: defaultResolvers(t), Canary: true},
			Passive:      Passive{Window: DefaultPassiveWindow},
			Grade:        defaultGrade(),
			SumDB:        SumDB{MaxAge: DefaultSumDBMaxAge},
			RangesSource: "built in",
			Targets:      targets,
		}
	}
	tests := map[string]*Config{
		"empty.yaml": defaults("testdata/good/empty.yaml"),
		"full.yaml": {
			Source:            "testdata/good/full.yaml",
			Toolchain:         false,
			PublicRootsSource: "testdata/good/lab-roots.pem",
			SystemRootsSource: "testdata/good/lab-roots.pem",
			Policy: detector.Policy{ApprovedInspection: []detector.SPKI{inspectionPin},
				Bogons: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/8")}},
			Timeout:     2500 * time.Millisecond,
			Concurrency: 32,
			Interval:    30 * time.Second,
			Path:        probe.PathOptions{Samples: 5, MaxHops: 4, TTLAlways: true},
			Passive:     Passive{Interface: "eth0", Ports: []uint16{443, 8443}, Window: 30 * time.Second},
			SumDB:       SumDB{MaxAge: DefaultSumDBMaxAge},
			DNS: DNS{ResolvConf: "/run/lab/resolv.conf", Reference: []resolver.Server{
				{Spec: "udp://192.0.2.53", Proto: "udp", Addr: "192.0.2.53:53"},
				{Spec: "tls://192.0.2.53:853#dns.lab.example", Proto: "tls", Addr: "192.0.2.53:853", ServerName: "dns.lab.example"},
			}},
			Grade: Grade{Mode: GradeAlways, Interval: 30 * time.Minute,
				TestHosts: []grade.TestHost{
					{Key: "expired", Host: "expired.lab.example", Port: 8443},
					{Key: "self-signed", Host: "self-signed.lab.example", Port: 443},
				},
				Control: &grade.TestHost{Key: "control", Host: "control.lab.example", Port: 8443}},
			RangesSource: "testdata/good/ranges.json",
			Targets: []Target{
				{
					Host: "proxy.lab.example", Port: 8443, Address: "192.0.2.10:8443",
					Source: "testdata/good/full.yaml:21",
					Expect: detector.Expectation{
						CASPKI: []detector.SPKI{labPin},
						IPRanges: []netip.Prefix{
							netip.MustParsePrefix("192.0.2.0/24"),
							netip.MustParsePrefix("2001:db8::/32"),
						},
						MinVersion: tls.VersionTLS13,
						ALPN:       []string{"h2", "http/1.1"},
						SCT:        true,
					},
				},
				{
					Host: "sum.lab.example", Port: 443, Source: "testdata/good/full.yaml:30",
					Expect: detector.Expectation{MinVersion: tls.VersionTLS12,
						IPRanges: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/25")}},
					Interval: 10 * time.Minute,
				},
				{
					Host: "2001:db8::7", Port: 443, Address: "[2001:db8::7]:443",
					Source: "testdata/good/full.yaml:36",
				},
			},
		},
		"bootstrap.yaml": func() *Config {
			c := defaults("testdata/good/bootstrap.yaml")
			c.Toolchain = false
			google, err := resolver.ParseServer("https://dns.google/dns-query")
			if err != nil || len(google.Bootstrap) == 0 {
				t.Fatalf("dns.google: %+v, %v", google, err)
			}
			c.DNS.Reference = []resolver.Server{
				{Spec: "tls://192.0.2.53:853#dns.lab.example", Proto: "tls", Addr: "192.0.2.53:853", ServerName: "dns.lab.example"},
				{Spec: "https://dns.lab.example/dns-query", Proto: "https", URL: "https://dns.lab.example/dns-query",
					Bootstrap: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")}},
				google,
			}
			return c
		}(),
		"integrity.yaml": func() *Config {
			pin := func(s string) detector.SSHFingerprint {
				f, err := detector.ParseSSHFingerprint(s)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			c := defaults("testdata/good/integrity.yaml",
				Target{Host: "git.lab.example", Port: 22, Protocol: detector.ProtocolSSH, Fallback: "ssh.git.lab.example:443",
					Source: "testdata/good/integrity.yaml:8", Expect: detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{
						pin("xESk1FW2N418kvFlYH4/9OVJB0uEsmp86h20wz0ZdAE"), pin("VX594fU5Mr5W/7PG+GJYnyXkNwkgwhxz7i8k1WQq2Mk")}}},
				Target{Host: "git.lab.example", Port: 443, Source: "testdata/good/integrity.yaml:13"},
				Target{Host: "git.lab.example", Port: 2222, Protocol: detector.ProtocolSSH, Address: "192.0.2.22:2222",
					Source: "testdata/good/integrity.yaml:14"},
				Target{Host: "git2.lab.example", Port: 22, Source: "testdata/good/integrity.yaml:18"},
			)
			c.Toolchain = false
			c.SumDB = SumDB{GOSUMDB: "sum.lab.example+59b4b0e4+AcIyK7D4LL3YP6GpVC64PyYRYlRsyAAk4lIBxt3mw7kS",
				GOPROXY: "https://proxy.lab.example,direct", MaxAge: 12 * time.Hour, Source: "testdata/good/integrity.yaml:4"}
			return c
		}(),
		"aliases.yaml": func() *Config {
			c := defaults("testdata/good/aliases.yaml",
				Target{Host: "mirror-a.lab.example", Port: 443, Source: "testdata/good/aliases.yaml:9", Expect: mirror},
				Target{Host: "mirror-b.lab.example", Port: 443, Source: "testdata/good/aliases.yaml:13", Expect: mirror},
				Target{Host: "mirror-a.lab.example", Port: 8443, Source: "testdata/good/aliases.yaml:15"},
				Target{Host: "198.51.100.9", Port: 1, Source: "testdata/good/aliases.yaml:18"},
			)
			c.Timeout = 5 * time.Minute
			return c
		}(),
	}
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := tests[name]
			if !ok {
				t.Fatalf("no expected config for %s", path)
			}
			got, err := Load(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, ignorePools); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if got.PublicRoots == nil || got.SystemRoots == nil {
				t.Error("trust pools not built")
			}
		})
	}
}

// TestTrustPaths checks that a PEM path builds the pool from that bundle
// rather than from a built-in store.
func TestTrustPaths(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/good/full.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	lab, certs, err := trust.LoadPEM("testdata/good/lab-roots.pem")
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !cfg.PublicRoots.Equal(lab) || !cfg.SystemRoots.Equal(lab) {
		t.Error("pools differ from testdata/good/lab-roots.pem")
	}
	// The same file, read from another directory, still finds its bundle.
	data, err := os.ReadFile("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = Parse(abs, data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(abs), "lab-roots.pem"); cfg.PublicRootsSource != want {
		t.Errorf("PublicRootsSource = %q, want %q", cfg.PublicRootsSource, want)
	}
}

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	cfg, err := Parse(EmbeddedName, mitmwatch.DefaultRules, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Toolchain || cfg.PublicRootsSource != trust.Mozilla || cfg.SystemRootsSource != trust.System ||
		cfg.Timeout != DefaultTimeout || cfg.Concurrency != DefaultConcurrency || len(cfg.Policy.ApprovedInspection) != 0 {
		t.Errorf("defaults not as documented: %+v", cfg)
	}
	if diff := cmp.Diff(defaultGrade(), cfg.Grade); diff != "" {
		t.Errorf("rules.yaml's grade section differs from the built-in defaults (-built in +rules.yaml):\n%s", diff)
	}
	wantHosts := []string{
		"github.com", "codeload.github.com", "objects.githubusercontent.com",
		"ssh://github.com:22", "ssh://ssh.github.com:443",
		"pypi.org", "files.pythonhosted.org", "index.crates.io", "static.crates.io",
		"registry-1.docker.io", "ghcr.io", "repo.maven.apache.org",
	}
	if cfg.SumDB != (SumDB{MaxAge: DefaultSumDBMaxAge}) {
		t.Errorf("checksum_database: %+v, want auto", cfg.SumDB)
	}
	var hosts []string
	for _, tg := range cfg.Targets {
		if tg.Protocol == detector.ProtocolSSH {
			// GitHub's published host keys, and its port-443 endpoint.
			hosts = append(hosts, tg.Key())
			if len(tg.Expect.SSHHostKeys) != 3 || (tg.Port == 22) != (tg.Fallback == "ssh.github.com:443") {
				t.Errorf("%s: %+v", tg.Key(), tg)
			}
			continue
		}
		hosts = append(hosts, tg.Host)
		if tg.Port != 443 || tg.Address != "" || !cmp.Equal(tg.Expect, detector.Expectation{}) {
			t.Errorf("%s: want port 443, no address and no expectations: %+v", tg.Host, tg)
		}
		if !strings.HasPrefix(tg.Source, EmbeddedName+":") {
			t.Errorf("%s: source %q", tg.Host, tg.Source)
		}
	}
	if diff := cmp.Diff(wantHosts, hosts); diff != "" {
		t.Errorf("default targets (-want +got):\n%s", diff)
	}
}

func TestWithToolchain(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("rules.yaml", []byte("targets:\n  - host: proxy.lab.example\n    expect: {sct: true}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, errs := WithToolchain(cfg.Targets, []toolchain.Host{
		{Host: "proxy.lab.example", Port: 443, Source: "go env GOPROXY"},
		{Host: "Sum.Lab.Example", Port: 443, Source: "go env GOSUMDB"},
		{Host: "npm.lab.example", Port: 4873, Source: "npm config get registry"},
		{Host: "sum.lab.example", Port: 443, Source: "pip config (global.index-url)"},
		{Host: "bad_name.lab.example", Port: 443, Source: "PIP_INDEX_URL"},
		{Host: "pypi.lab.example", Port: 0, Source: "PIP_EXTRA_INDEX_URL"},
	})
	want := []Target{
		{Host: "proxy.lab.example", Port: 443, Source: "rules.yaml:2", Expect: detector.Expectation{SCT: true}},
		{Host: "sum.lab.example", Port: 443, Source: "go env GOSUMDB"},
		{Host: "npm.lab.example", Port: 4873, Source: "npm config get registry"},
	}
	if diff := cmp.Diff(want, got, ignorePools); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	wantErrs := []string{
		`PIP_INDEX_URL: invalid host "bad_name.lab.example" (want a DNS name or an IP address)`,
		`PIP_EXTRA_INDEX_URL: invalid port 0`,
	}
	var gotErrs []string
	for _, err := range errs {
		gotErrs = append(gotErrs, err.Error())
	}
	if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// TestRangesFileOption checks where "provider:NAME" resolves when the file
// has no ranges_file: the caller's snapshot if it exists, else the built-in
// one. Nothing on the host is read unless the caller names it.
func TestRangesFileOption(t *testing.T) {
	t.Parallel()
	const rules = "targets:\n  - host: sum.lab.example\n    expect: {ip_ranges: [\"provider:github/git\"]}\n"
	git := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/25")}
	for _, c := range []struct {
		name, rules, rangesFile string
		wantSource              string
		wantErr                 string
	}{
		{name: "option", rules: rules, rangesFile: "testdata/good/ranges.json", wantSource: "testdata/good/ranges.json"},
		{name: "option absent on disk", rules: rules, rangesFile: "testdata/good/no-such-ranges.json",
			wantErr: "rules.yaml:3: targets[0].expect.ip_ranges[0]: ranges: \"provider:github/git\": provider github has no ranges in the snapshot; run `mitmwatch ranges update` (snapshot built in)"},
		{name: "no option", rules: rules,
			wantErr: "rules.yaml:3: targets[0].expect.ip_ranges[0]: ranges: \"provider:github/git\": provider github has no ranges in the snapshot; run `mitmwatch ranges update` (snapshot built in)"},
		{name: "ranges_file wins", rules: "ranges_file: testdata/good/ranges.json\n" + rules, rangesFile: "testdata/good/no-such-ranges.json",
			wantSource: "testdata/good/ranges.json"},
		{name: "option unreadable", rules: rules, rangesFile: "testdata/good/full.yaml",
			wantErr: "rules.yaml: ranges_file: ranges: testdata/good/full.yaml: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("rules.yaml", []byte(c.rules), Options{RangesFile: c.rangesFile})
			if c.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one starting %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RangesSource != c.wantSource {
				t.Errorf("RangesSource = %q, want %q", cfg.RangesSource, c.wantSource)
			}
			if diff := cmp.Diff(git, cfg.Targets[0].Expect.IPRanges, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("ranges (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBadDefaultResolver checks that a broken built-in default is reported
// as a problem of the config, not a crash. (TestGood checks the real
// defaults parse.)
func TestBadDefaultResolver(t *testing.T) {
	t.Parallel()
	d := newDecoder("rules.yaml", Options{})
	got := d.defaultResolvers([]string{"udp://192.0.2.53", "dns.lab.example:53"})
	if len(got) != 1 || got[0].Addr != "192.0.2.53:53" {
		t.Errorf("resolvers %+v, want the valid one", got)
	}
	want := `rules.yaml: dns.reference_resolvers: built-in default: invalid resolver "dns.lab.example:53": missing scheme (want udp://, tcp://, tls:// or https://)`
	if err := d.err(); err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// TestGradeSection: what grade: keys set beside the defaults.
func TestGradeSection(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, rules string
		want        func(*Grade)
	}{
		{"absent: the defaults", "", func(*Grade) {}},
		{"no test hosts", "grade:\n  test_hosts: {}\n", func(g *Grade) { g.TestHosts = []grade.TestHost{} }},
		{"no control", "grade:\n  control: none\n", func(g *Grade) { g.Control = nil }},
		{"a port of 443 by default", "grade:\n  test_hosts:\n    revoked: revoked.lab.example\n  control: lab.example\n", func(g *Grade) {
			g.TestHosts = []grade.TestHost{{Key: "revoked", Host: "revoked.lab.example", Port: 443}}
			g.Control = &grade.TestHost{Key: "control", Host: "lab.example", Port: 443}
		}},
		{"never", "grade:\n  enabled: never\n  interval: 2h\n", func(g *Grade) { g.Mode, g.Interval = GradeNever, 2*time.Hour }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("rules.yaml", []byte(c.rules), Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := defaultGrade()
			c.want(&want)
			if diff := cmp.Diff(want, cfg.Grade); diff != "" {
				t.Errorf("grade (-want +got):\n%s", diff)
			}
		})
	}
}

// With StoresLater both stores load in the background and are the same
// stores once waited for; a system_roots bundle is still read at once, and
// a public_roots bundle that fails is StoreErr's, as Parse would have
// said it.
func TestStoresLater(t *testing.T) {
	cfg, err := Parse("rules.yaml", nil, Options{StoresLater: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SystemRoots != nil || cfg.SystemRootsSource != trust.System || cfg.PublicRoots != nil || cfg.PublicRootsSource != trust.Mozilla {
		t.Fatalf("stores %v from %q and %v from %q: loaded at once", cfg.PublicRoots, cfg.PublicRootsSource, cfg.SystemRoots, cfg.SystemRootsSource)
	}
	want, err := trust.SystemRoots(trust.System)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SystemStore(); got == nil || !got.Pool().Equal(want) {
		t.Errorf("SystemStore() is not the system's store")
	}
	if want, err = trust.PublicRoots(trust.Mozilla); err != nil {
		t.Fatal(err)
	}
	if got := cfg.PublicStore(); got == nil || !got.Pool().Equal(want) || cfg.StoreErr() != nil {
		t.Errorf("PublicStore() is not the Mozilla roots, or StoreErr() = %v", cfg.StoreErr())
	}
	bundle, err := Parse("testdata/good/lab.yaml", []byte("trust:\n  system_roots: lab-roots.pem\n  public_roots: lab-roots.pem\n"), Options{StoresLater: true})
	if err != nil {
		t.Fatal(err)
	}
	if bundle.SystemRoots == nil || bundle.SystemStore().Pool() != bundle.SystemRoots {
		t.Errorf("a system_roots bundle was not read at once")
	}
	if got, want := bundle.PublicStore(), bundle.SystemStore(); got == nil || !got.Pool().Equal(want.Pool()) {
		t.Errorf("the public_roots bundle loaded later is not the bundle")
	}
	missing, err := Parse("testdata/good/lab.yaml", []byte("trust:\n  public_roots: missing.pem\n"), Options{StoresLater: true})
	if err != nil {
		t.Fatalf("a public_roots bundle was read at once: %v", err)
	}
	var e *Error
	if err := missing.StoreErr(); !errors.As(err, &e) || e.Line != 2 || e.Path != "trust.public_roots" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("StoreErr() = %v, want the *Error for line 2, trust.public_roots, not exist", err)
	}
	if _, err := Parse("testdata/good/lab.yaml", []byte("trust:\n  public_roots: missing.pem\n"), Options{}); err == nil || err.Error() != missing.StoreErr().Error() {
		t.Errorf("later error %q differs from Parse's %v", missing.StoreErr(), err)
	}
	if missing.PublicStore() == nil {
		t.Error("a store that failed to load is nil, want empty")
	}
}
