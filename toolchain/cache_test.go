package toolchain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	ask(NewAnswers(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE").Run)
	ask(NewAnswers(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE").Run) // a new process reads the file
	if calls != 1 {
		t.Fatalf("%d runs, want 1: the second answer comes from the file", calls)
	}
	t.Setenv("MITMWATCH_TEST_TOOL_MODE", "b")
	ask(NewAnswers(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE").Run)
	if calls != 2 {
		t.Fatalf("%d runs, want 2: a variable the answer depends on changed", calls)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho v2, upgraded\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ask(NewAnswers(run, file, time.Hour, "MITMWATCH_TEST_TOOL_MODE").Run)
	if calls != 3 {
		t.Fatalf("%d runs, want 3: the binary changed", calls)
	}
	ask(NewAnswers(run, file, 0, "MITMWATCH_TEST_TOOL_MODE").Run)
	if calls != 4 {
		t.Fatalf("%d runs, want 4: the answer is older than the ttl", calls)
	}
	fail = true
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ask(NewAnswers(run, file, time.Hour).Run)
	if _, err := NewAnswers(run, file, time.Hour).Run(context.Background(), bin, "--version"); err == nil || calls != 5 {
		t.Fatalf("%d runs, error %v: want 5, the failure kept and returned", calls, err)
	}
	ask(NewAnswers(run, file, 0).Run)
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
	ask(NewAnswers(run, file, time.Hour).Run)
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
		if _, err := NewAnswers(run, cache, time.Hour).Run(context.Background(), bin, "--roots"); err != nil {
			t.Fatal(err)
		}
	}
	last := bins[len(bins)-1]
	out, err := NewAnswers(run, cache, time.Hour).Run(context.Background(), last, "--roots")
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

// TestAnswersOutput: an answer the caller knows by its digest is given by
// its first line, its body left unread, so damage to the body goes
// unseen; a caller that does not know it reads it whole, and a damaged
// body (its digest no longer the one written) is asked again. An answer
// kept before digests were written is read whole.
func TestAnswersOutput(t *testing.T) {
	output := []byte("{\"version\":\"v1\"}\n" + strings.Repeat("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 1000))
	bin, cache, run, calls := fakeTool(t, output)
	want := sha256.Sum256(output)
	var asked [][32]byte
	knows := func(sum [32]byte, size int) bool {
		asked = append(asked, sum)
		return sum == want && size == len(output)
	}
	ctx := context.Background()
	output1 := func(known func([32]byte, int) bool) Output {
		t.Helper()
		o, err := NewAnswers(run, cache, time.Hour).Output(ctx, known, bin, "-e", "script")
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	// The first time the command runs: the output whole, known or not.
	if o := output1(knows); *calls != 1 || !bytes.Equal(o.Whole, output) || o.Sum != want || o.Size != len(output) || string(o.First) != `{"version":"v1"}` {
		t.Fatalf("first output: %d runs, %q, %d bytes", *calls, o.First, o.Size)
	}
	if o := output1(knows); *calls != 1 || o.Whole != nil || o.Sum != want || o.Size != len(output) || string(o.First) != `{"version":"v1"}` {
		t.Fatalf("known output: %d runs, first line %q, whole %d bytes; want the kept first line alone", *calls, o.First, len(o.Whole))
	}
	if len(asked) != 1 || asked[0] != want {
		t.Fatalf("known asked for %x, want once for the output's digest", asked)
	}
	if o := output1(func([32]byte, int) bool { return false }); *calls != 1 || !bytes.Equal(o.Whole, output) {
		t.Fatalf("unknown output: %d runs, whole %d bytes; want it read from the file", *calls, len(o.Whole))
	}

	// The body damaged in place, its size and first line the same.
	file := onlyAnswer(t, cache)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Replace(data, []byte("AAAA"), []byte("BBBB"), 1)
	if err := os.WriteFile(file, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	if o := output1(knows); *calls != 1 || o.Whole != nil {
		t.Fatalf("known output, damaged body: %d runs, whole %d bytes; want the body unread", *calls, len(o.Whole))
	}
	if out, err := NewAnswers(run, cache, time.Hour).Run(ctx, bin, "-e", "script"); err != nil || *calls != 2 || !bytes.Equal(out, output) {
		t.Fatalf("damaged body: %d runs, %v; want it asked again", *calls, err)
	}

	// Written before digests were.
	data, err = os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(data, []byte("\n"))
	var meta map[string]any
	if err := json.Unmarshal(head, &meta); err != nil || meta["sum"] == nil {
		t.Fatalf("answer's first line %s (%v): want its digest", head, err)
	}
	delete(meta, "sum")
	old, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, slices.Concat(old, []byte("\n"), body), 0o644); err != nil {
		t.Fatal(err)
	}
	if o := output1(knows); *calls != 2 || !bytes.Equal(o.Whole, output) || o.Sum != want {
		t.Fatalf("answer without a digest: %d runs, whole %d bytes; want it read whole", *calls, len(o.Whole))
	}
}

// TestOutputOf: an output given whole, with and without a line end.
func TestOutputOf(t *testing.T) {
	for _, c := range []struct{ out, first string }{{"a\nb\n", "a"}, {"a", "a"}, {"", ""}, {"\nb", ""}} {
		o := OutputOf([]byte(c.out))
		if string(o.First) != c.first || string(o.Whole) != c.out || o.Size != len(c.out) || o.Sum != sha256.Sum256([]byte(c.out)) {
			t.Errorf("OutputOf(%q) = %+v", c.out, o)
		}
	}
}

// TestAnswersDamaged: an answer's file with a digest of the wrong length
// or not hex is no answer (the command is asked again), never a crash.
func TestAnswersDamaged(t *testing.T) {
	output := []byte("{}\n" + strings.Repeat("x", 20000))
	bin, cache, run, calls := fakeTool(t, output)
	ctx := context.Background()
	knows := func([32]byte, int) bool { return true }
	if _, err := NewAnswers(run, cache, time.Hour).Output(ctx, knows, bin); err != nil || *calls != 1 {
		t.Fatalf("first answer: %v, %d runs", err, *calls)
	}
	file := onlyAnswer(t, cache)
	kept, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(kept, []byte("\n"))
	var meta map[string]any
	if err := json.Unmarshal(head, &meta); err != nil {
		t.Fatal(err)
	}
	sum := meta["sum"].(string)
	for _, c := range []struct {
		name string
		sum  string
	}{
		{"sum too long", "00" + sum},
		{"sum too short", sum[2:]},
		{"sum not hex", "zz" + sum[2:]},
	} {
		t.Run(c.name, func(t *testing.T) {
			meta["sum"] = c.sum
			head, err := json.Marshal(meta)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, slices.Concat(head, []byte("\n"), body), 0o644); err != nil {
				t.Fatal(err)
			}
			before := *calls
			o, err := NewAnswers(run, cache, time.Hour).Output(ctx, knows, bin)
			if err != nil || *calls != before+1 || !bytes.Equal(o.Whole, output) {
				t.Errorf("%v, %d runs, %d bytes: want the command asked again", err, *calls-before, len(o.Whole))
			}
		})
	}
}

// fakeTool is a binary to key answers by, a cache directory, and a
// runner that answers output for it, counting its runs in calls.
func fakeTool(t *testing.T, output []byte) (bin, cache string, run Runner, calls *int) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	calls = new(int)
	run = func(context.Context, string, ...string) ([]byte, error) {
		*calls++
		return output, nil
	}
	return bin, filepath.Join(dir, "answers"), run, calls
}

// onlyAnswer is the one answer's file in cache.
func onlyAnswer(t *testing.T, cache string) string {
	t.Helper()
	entries, err := os.ReadDir(cache)
	if err != nil || len(entries) != 1 {
		t.Fatalf("answers %v, %v: want one", entries, err)
	}
	return filepath.Join(cache, entries[0].Name())
}
