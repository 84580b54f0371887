package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadConfigToolchain: with toolchain: auto the commands that probe
// (check without its audit, run, baseline learn) add the hosts the home
// directory's go, npm and pip settings name, with where each was read.
func TestLoadConfigToolchain(t *testing.T) {
	t.Parallel()
	home := goHome(t) // the go command runs in it
	must(t, os.WriteFile(filepath.Join(home, ".npmrc"), []byte("registry=https://npm.lab.example/\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(home, ".config", "pip"), 0o755))
	must(t, os.WriteFile(filepath.Join(home, ".config", "pip", "pip.conf"), []byte("[global]\nindex-url = https://pypi.lab.example/simple\n"), 0o644))
	rules := filepath.Join(home, "rules.yaml")
	must(t, os.WriteFile(rules, []byte("toolchain: auto\ntargets:\n  - host: git.lab.example\n"), 0o644))
	vars := map[string]string{"HOME": home, "GOPROXY": "https://proxy.lab.example,direct", "GOSUMDB": "sum.lab.example"}
	e := env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return vars[k] }}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, targets, err := loadConfig(ctx, e, rules, toolchainSettings(e, true))
	must(t, err)
	got := map[string]string{}
	for _, tg := range targets {
		got[tg.Key()] = tg.Source
	}
	for key, source := range map[string]string{
		"git.lab.example:443":   rules + ":3",
		"proxy.lab.example:443": "GOPROXY (environment)",
		"sum.lab.example:443":   "GOSUMDB (environment)",
		"npm.lab.example:443":   "registry (" + filepath.Join(home, ".npmrc") + ":1)",
		"pypi.lab.example:443":  "global.index-url (" + filepath.Join(home, ".config", "pip", "pip.conf") + ":2)",
	} {
		if got[key] != source {
			t.Errorf("%s: source %q, want %q (targets %v)", key, got[key], source, got)
		}
	}

	_, targets, err = loadConfig(ctx, e, rules, toolchainSettings(e, false))
	must(t, err)
	if len(targets) != 1 {
		t.Errorf("--no-toolchain: %d targets, want the config's one", len(targets))
	}
}
