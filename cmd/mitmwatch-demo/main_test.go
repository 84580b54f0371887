package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func runDemo(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// TestDemo shows every verdict the lab can produce and succeeds.
func TestDemo(t *testing.T) {
	code, out, stderr := runDemo(t, "-o", "json", "--timeout", "3s") // room for a loaded machine; the black hole takes all of it
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Targets []struct {
			Verdict string `json:"verdict"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	seen := map[string]bool{}
	for _, tg := range doc.Targets {
		seen[tg.Verdict] = true
	}
	for _, v := range []string{"ok", "intercepted", "inspected", "downgraded", "plaintext", "blocked", "captive-portal", "invalid-cert", "unreachable", "dns-tampered"} {
		if !seen[v] {
			t.Errorf("demo shows no %s", v)
		}
	}
}

// TestUsage checks the flags without starting the lab.
func TestUsage(t *testing.T) {
	if code, _, stderr := runDemo(t, "--help"); code != 0 || !strings.Contains(stderr, "--timeout") {
		t.Errorf("--help: %d %q", code, stderr)
	}
	if code, _, stderr := runDemo(t, "-o", "yaml"); code != 2 || !strings.Contains(stderr, "mitmwatch-demo: ") {
		t.Errorf("-o yaml: %d %q, want 2 and the error", code, stderr)
	}
}
