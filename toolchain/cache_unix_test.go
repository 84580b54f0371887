//go:build unix

package toolchain

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestAnswersNotARegularFile: a FIFO in an answer's place is no answer
// (the command is asked again), and reading it does not hang.
func TestAnswersNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "answers")
	output := []byte("{}\nroots\n")
	calls := 0
	run := func(context.Context, string, ...string) ([]byte, error) {
		calls++
		return output, nil
	}
	ctx := context.Background()
	if _, err := NewAnswers(run, cache, time.Hour).Output(ctx, nil, bin); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(cache)
	if err != nil || len(entries) != 1 {
		t.Fatalf("answers %v, %v: want one", entries, err)
	}
	file := filepath.Join(cache, entries[0].Name())
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(file, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if o, err := NewAnswers(run, cache, time.Hour).Output(ctx, nil, bin); err != nil || calls != 2 || !bytes.Equal(o.Whole, output) {
		t.Errorf("%v, %d runs: want the command asked again", err, calls)
	}
}
