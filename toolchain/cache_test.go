package toolchain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestCached: an installation's answer is asked once, kept in its file
// across runners (processes), and asked again when the binary changes,
// when a variable it depends on changes, when it is too old, when the
// command failed, or when its file is corrupt.
func TestCached(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho v1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "cache", "answers")
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
	entries, err := os.ReadDir(file)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no answer files in %s: %v", file, err)
	}
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(file, e.Name()), []byte("{not json"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fail = false
	ask(Cached(run, file, time.Hour))
	if calls != 7 {
		t.Fatalf("%d runs, want 7: a corrupt file is empty", calls)
	}
}

// TestCachedKeepsOutputAndBounds: an answer comes back byte for byte
// (Node's roots are PEM text with every kind of line end), and the
// directory keeps the newest maxAnswers answers.
func TestCachedKeepsOutputAndBounds(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "answers")
	var bins []string
	for i := range maxAnswers + 3 {
		bin := filepath.Join(dir, "tool"+strconv.Itoa(i))
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, bin)
	}
	output := []byte("line one\r\nline two\n\x00binary\n\n")
	calls := 0
	run := func(context.Context, string, ...string) ([]byte, error) {
		calls++
		return output, nil
	}
	for _, bin := range bins {
		if _, err := Cached(run, cache, time.Hour)(context.Background(), bin, "--roots"); err != nil {
			t.Fatal(err)
		}
	}
	last := bins[len(bins)-1]
	out, err := Cached(run, cache, time.Hour)(context.Background(), last, "--roots")
	if err != nil || !bytes.Equal(out, output) || calls != len(bins) {
		t.Fatalf("cached answer %q, %v after %d runs; want %q from %d runs", out, err, calls, output, len(bins))
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != maxAnswers {
		t.Errorf("%d answers kept, want %d", len(entries), maxAnswers)
	}
}
