package toolchain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCached: an installation's answer is asked once, kept in the file
// across runners (processes), and asked again when the binary changes,
// when a variable it depends on changes, when it is too old, or when the
// command failed.
func TestCached(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho v1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "cache", "answers.json")
	calls := 0
	fail := false
	run := func(context.Context, string, ...string) ([]byte, error) {
		calls++
		if fail {
			return nil, errors.New("tool failed")
		}
		return []byte("answer\n"), nil
	}
	ask := func(r Runner) {
		t.Helper()
		out, err := r(context.Background(), bin, "--version")
		if !fail && (err != nil || string(out) != "answer\n") {
			t.Fatalf("answer %q, %v", out, err)
		}
	}
	t.Setenv("MITMWATCH_TEST_TOOL_MODE", "a")
	ask(Cached(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE"))
	ask(Cached(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE")) // a new process reads the file
	if calls != 1 {
		t.Fatalf("%d runs, want 1: the second answer comes from the file", calls)
	}
	t.Setenv("MITMWATCH_TEST_TOOL_MODE", "b")
	ask(Cached(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE"))
	if calls != 2 {
		t.Fatalf("%d runs, want 2: a variable the answer depends on changed", calls)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho v2, upgraded\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ask(Cached(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE"))
	if calls != 3 {
		t.Fatalf("%d runs, want 3: the binary changed", calls)
	}
	ask(Cached(run, file, 0, "MITMWATCH_TEST_TOOL_MODE"))
	if calls != 4 {
		t.Fatalf("%d runs, want 4: the answer is older than the ttl", calls)
	}
	fail = true
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ask(Cached(run, file, time.Hour))
	if _, err := Cached(run, file, time.Hour)(context.Background(), bin, "--version"); err == nil || calls != 5 {
		t.Fatalf("%d runs, error %v: want 5, the failure kept and returned", calls, err)
	}
	ask(Cached(run, file, 0))
	if calls != 6 {
		t.Fatalf("%d runs, want 6: a failure older than the ttl is asked again", calls)
	}
	if err := os.WriteFile(file, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	fail = false
	ask(Cached(run, file, time.Hour))
	if calls != 7 {
		t.Fatalf("%d runs, want 7: a corrupt file is empty", calls)
	}
}
