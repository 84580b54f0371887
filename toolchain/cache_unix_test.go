//go:build unix

package toolchain

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestAnswersNotARegularFile: a FIFO in an answer's place is no answer
// (the command is asked again), and reading it does not hang.
func TestAnswersNotARegularFile(t *testing.T) {
	output := []byte("{}\nroots\n")
	bin, cache, run, calls := fakeTool(t, output)
	ctx := context.Background()
	if _, err := NewAnswers(run, cache, time.Hour).Output(ctx, nil, bin); err != nil {
		t.Fatal(err)
	}
	file := onlyAnswer(t, cache)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(file, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if o, err := NewAnswers(run, cache, time.Hour).Output(ctx, nil, bin); err != nil || *calls != 2 || !bytes.Equal(o.Whole, output) {
		t.Errorf("%v, %d runs: want the command asked again", err, *calls)
	}
}
