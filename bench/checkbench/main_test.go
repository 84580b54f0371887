//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

func TestSpread(t *testing.T) {
	in := []float64{9, 1, 4, 7, 2}
	if got, want := spreadOf(in), (spread{4, 1, 9}); got != want {
		t.Errorf("spreadOf(%v) = %v, want %v", in, got, want)
	}
	if !slices.Equal(in, []float64{9, 1, 4, 7, 2}) {
		t.Errorf("spreadOf reordered its input: %v", in)
	}
}

// TestRulesAreDefault: the benchmark measures the default configuration;
// its rules.yaml may only name the targets, the public roots and the lab's
// reference resolvers, and must be valid.
func TestRulesAreDefault(t *testing.T) {
	y := rulesYAML("/lab/public.pem")
	for _, off := range []string{"probe", "path", "samples", "canary", "toolchain", "timeout"} {
		if strings.Contains(y, off) {
			t.Errorf("rules.yaml sets %q:\n%s", off, y)
		}
	}
	cfg, err := config.Parse("rules.yaml", []byte(strings.Replace(y, "/lab/public.pem", "mozilla", 1)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Toolchain || !cfg.DNS.Canary || cfg.Path.Samples == 0 || len(cfg.DNS.Reference) != 3 || len(cfg.Targets) != len(hosts) {
		t.Errorf("not the default configuration: toolchain %v, canary %v, path %+v, %d references, %d targets",
			cfg.Toolchain, cfg.DNS.Canary, cfg.Path, len(cfg.DNS.Reference), len(cfg.Targets))
	}
	// Every default bogon but the benchmarking range the lab lives in.
	if len(cfg.Policy.Bogons) != len(detector.DefaultBogons)-1 || slices.Contains(cfg.Policy.Bogons, netip.MustParsePrefix("198.18.0.0/15")) {
		t.Errorf("bogons %v, want the defaults less 198.18.0.0/15", cfg.Policy.Bogons)
	}
}

// TestChildEnv: the children see the benchmark's home and trust store,
// and nothing of this shell's proxies or tool settings.
func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "HOME=/root", "https_proxy=http://p.example:3128", "GOPROXY=off",
		"npm_config_registry=https://r.example/", "PIP_INDEX_URL=https://i.example/", "SSL_CERT_DIR=/x", "LANG=C"}, "/b/home", "/b/system.pem")
	want := []string{"PATH=/bin", "LANG=C", "HOME=/b/home", "SSL_CERT_FILE=/b/system.pem"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %v, want %v", got, want)
	}
}

// TestClean: figures of a round that was not clean, or lacks or adds
// targets, are refused.
func TestClean(t *testing.T) {
	doc := func(verdicts ...string) roundDoc {
		var b strings.Builder
		b.WriteString(`{"targets":[`)
		for i, v := range verdicts {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"host":"h%d.bench.example","verdict":%q,"findings":[{"reason":"dns-unverified"}]}`, i, v)
		}
		b.WriteString("]}")
		d, err := parseRound([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	clean := slices.Repeat([]string{"ok"}, len(hosts))
	if err := doc(clean...).clean(0); err != nil {
		t.Errorf("clean round refused: %v", err)
	}
	if n := doc(clean...).withReason("dns-unverified"); n != len(hosts) {
		t.Errorf("withReason counted %d, want %d", n, len(hosts))
	}
	dirty := slices.Clone(clean)
	dirty[3] = "intercepted"
	for name, err := range map[string]error{
		"intercepted": doc(dirty...).clean(1),
		"one target":  doc("ok").clean(0),
		"exit 3":      doc(clean...).clean(3),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := parseRound([]byte("not json")); err == nil {
		t.Error("garbage accepted")
	}
}

// TestRatio: ratios are taken within each round, then the median.
func TestRatio(t *testing.T) {
	ms := func(xs ...float64) []sample {
		var out []sample
		for _, x := range xs {
			out = append(out, sample{wall: time.Duration(x * float64(time.Millisecond))})
		}
		return out
	}
	// The second round disturbed a alone: the ratio of the medians
	// (330/250) would show it, the median of the rounds' ratios does not.
	if got := ratio(ms(110, 500, 330), ms(100, 250, 300), wallMS); got != 1.1 {
		t.Errorf("ratio = %v, want 1.1", got)
	}
}
