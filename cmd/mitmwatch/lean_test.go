package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// agentOnly are what only the agent links: the service's and capture's
// libraries, whose package inits a check would otherwise pay for.
var agentOnly = []string{
	"github.com/prometheus/",
	"github.com/gopacket/",
	"google.golang.org/protobuf/",
	"github.com/mitmwatch/mitmwatch/daemon",
	"github.com/mitmwatch/mitmwatch/exporter",
	"github.com/mitmwatch/mitmwatch/passive",
}

// TestLeanLinksNoAgent: the release's mitmwatch (-tags lean) links none of
// the agent's libraries.
func TestLeanLinksNoAgent(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-tags", "lean", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -tags lean: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/mitmwatch/mitmwatch/cmd/mitmwatch" {
		t.Fatalf("go list does not end with the command itself:\n%s", out)
	}
	for _, pkg := range deps {
		for _, p := range agentOnly {
			if strings.HasPrefix(pkg+"/", p) || strings.HasPrefix(pkg, p) {
				t.Errorf("the lean mitmwatch links %s", pkg)
			}
		}
	}
}

// buildPair builds the release's pair into a directory: mitmwatch (lean)
// and mitmwatch-agent beside it.
func buildPair(t *testing.T) (lean, agent string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	dir := t.TempDir()
	ext := ""
	if runtime.GOOS == "windows" {
		ext = ".exe"
	}
	lean, agent = filepath.Join(dir, "mitmwatch"+ext), filepath.Join(dir, "mitmwatch-agent"+ext)
	for _, b := range [][]string{{"-tags", "lean", "-o", lean}, {"-o", agent}} {
		cmd := exec.Command("go", append(append([]string{"build"}, b...), ".")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", b, err, out)
		}
	}
	return lean, agent
}

type ran struct {
	stdout, stderr string
	code           int
}

func runBin(t *testing.T, bin string, args ...string) ran {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ran{stdout.String(), stderr.String(), ee.ExitCode()}
	case err != nil:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return ran{stdout.String(), stderr.String(), 0}
}

// TestLeanHandsOver: the lean mitmwatch runs its own commands without the
// agent, and hands the others (and all help) to the agent, which answers
// exactly as when run directly; without the agent it says what is missing.
func TestLeanHandsOver(t *testing.T) {
	t.Parallel()
	lean, agent := buildPair(t)
	rules := filepath.Join("..", "..", "rules.yaml")
	for _, args := range [][]string{
		{"--help"},
		{},
		{"help", "run"},
		{"check", "--help"},
		{"run", "--no-such-flag"},
		{"pcap", filepath.Join(t.TempDir(), "missing.pcap")},
		{"sniff", "--no-such-flag"},
		{"no-such-command"},
		{"--completion-bash"},
		{"version"},
		{"validate", "--config", rules},
	} {
		got, want := runBin(t, lean, args...), runBin(t, agent, args...)
		if got.code != want.code || got.stdout != want.stdout || scrubTimes(got.stderr) != scrubTimes(want.stderr) {
			t.Errorf("mitmwatch %q: exit %d\n%s%s\nmitmwatch-agent: exit %d\n%s%s", args, got.code, got.stdout, got.stderr, want.code, want.stdout, want.stderr)
		}
	}

	execsInPlace(t, lean, agent)

	// Without the agent: its own commands still run; the others say why
	// they cannot.
	if err := os.Remove(agent); err != nil {
		t.Fatal(err)
	}
	if r := runBin(t, lean, "validate", "--config", rules); r.code != 0 {
		t.Errorf("validate without the agent: exit %d: %s", r.code, r.stderr)
	}
	r := runBin(t, lean, "run")
	if r.code != 2 || !strings.Contains(r.stderr, "mitmwatch run needs mitmwatch-agent") {
		t.Errorf("run without the agent: exit %d: %q", r.code, r.stderr)
	}
}

// scrubTimes drops log lines' time stamps, which differ between two runs.
func scrubTimes(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(line, "time="); ok {
			if _, after, ok := strings.Cut(rest, " "); ok {
				line = after
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// execsInPlace: the agent takes over the lean process itself (same PID),
// which systemd's notify socket, watchdog and socket activation
// (LISTEN_PID) rely on. The agent's pcap opens a FIFO and waits there for
// a writer, long enough to look at what the PID runs.
func execsInPlace(t *testing.T, lean, agent string) {
	if runtime.GOOS != "linux" {
		return // no /proc to read
	}
	fifo := filepath.Join(t.TempDir(), "capture.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lean, "pcap", fifo)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var exe string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if exe, _ = os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe")); exe == agent {
			break
		}
	}
	// Let pcap read an empty file and end.
	if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
		w.Close()
	} else {
		cmd.Process.Kill()
	}
	if exe != agent {
		t.Errorf("process %d runs %q, want the agent %q", cmd.Process.Pid, exe, agent)
	}
}
