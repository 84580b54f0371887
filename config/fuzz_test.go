package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, a failure
// must be located in the file, and a success must hold the invariants the
// rest of mitmwatch relies on.
func FuzzParse(f *testing.F) {
	f.Add(mitmwatch.DefaultRules)
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) < 4096 {
			f.Add(data)
		}
	}
	const name = "testdata/good/fuzz.yaml" // so relative PEM paths can resolve
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(name, data, Options{})
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, name+":") {
					t.Fatalf("error line %q does not name the file", line)
				}
			}
			return
		}
		if cfg.PublicRoots == nil || cfg.SystemRoots == nil {
			t.Fatal("trust pools missing")
		}
		if cfg.Timeout <= 0 || cfg.Timeout > MaxTimeout || cfg.Concurrency < 1 || cfg.Concurrency > MaxConcurrency {
			t.Fatalf("probe settings out of range: %v, %d", cfg.Timeout, cfg.Concurrency)
		}
		seen := map[string]bool{}
		for _, tg := range cfg.Targets {
			if tg.Port < 1 || tg.Port > 65535 {
				t.Fatalf("%s: port out of range", tg.Key())
			}
			if h, problem := parseHost(tg.Host); problem != "" || h != tg.Host {
				t.Fatalf("host %q is not canonical", tg.Host)
			}
			if tg.Address != "" {
				if a, problem := parseAddress(tg.Address); problem != "" || a != tg.Address {
					t.Fatalf("address %q is not canonical", tg.Address)
				}
			}
			for _, p := range tg.Expect.IPRanges {
				if p != p.Masked() {
					t.Fatalf("range %v is not masked", p)
				}
			}
			if seen[tg.Key()] {
				t.Fatalf("duplicate target %s", tg.Key())
			}
			seen[tg.Key()] = true
		}
	})
}
