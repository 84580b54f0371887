package daemon

import (
	"bufio"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
	"github.com/mitmwatch/mitmwatch/baseline"
	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
)

// crashChildEnv makes the test binary the writer the crash test kills.
const crashChildEnv = "MITMWATCH_CRASH_WRITER_DIR"

// crashTargets is the state's size: large enough (~100 KB) that a kill
// often lands inside a write.
const crashTargets = 300

// generation g of the state and the baseline: every target's probe count
// and the baseline's learning time say which write a file came from.
func stateOf(g int) []exporter.Target {
	recs := make([]exporter.Target, crashTargets)
	for i := range recs {
		key := fmt.Sprintf("host-%03d.example:443", i)
		recs[i] = exporter.Target{Key: key, Host: key[:len(key)-4], Port: 443, Probes: uint64(g), Failures: 0,
			IssuerCN: strings.Repeat("CA ", 20), RootSPKI: "AAAA", TLSVersion: "TLS 1.3",
			Findings: []detector.Finding{{Reason: detector.Reasons[0], Severity: detector.Info, Detail: "generation " + strconv.Itoa(g)}}}
	}
	return recs
}

func baselineOf(g int) baseline.Baseline {
	b := baseline.Baseline{Version: baseline.Version, LearnedAt: time.Unix(int64(g), 0).UTC(), Targets: map[string]baseline.Entry{}}
	for i := range crashTargets {
		b.Targets[fmt.Sprintf("host-%03d.example:443", i)] = baseline.Entry{CASPKI: []string{"AAAA"}, TLSVersion: "1.3"}
	}
	return b
}

// TestMain lets the crash test re-execute this binary as the writer.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashWriter(dir))
	}
	os.Exit(m.Run())
}

// crashWriter rewrites the state and the baseline the way the daemon and
// `baseline learn` do, generation after generation, printing each
// generation once both files of it are in place, until it is killed.
func crashWriter(dir string) int {
	start, _ := strconv.Atoi(os.Getenv("MITMWATCH_CRASH_FROM"))
	for g := start; ; g++ {
		data, err := encodeState(stateOf(g), time.Unix(int64(g), 0))
		if err == nil {
			err = atomicfile.Write(filepath.Join(dir, stateFile), data, 0o644)
		}
		if err == nil {
			err = baselineOf(g).Save(filepath.Join(dir, "baseline.json"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("gen %d\n", g)
	}
}

// Crash safety: the writer is killed with SIGKILL at a random moment of its
// writes, 50 times; every restart restores a whole state (the last
// generation acknowledged, or the one being written), never a torn one,
// and logs which it restored. Bounded: each round kills within 30ms of
// the writer's first acknowledged write.
func TestStateSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs SIGKILL and a Unix file system")
	}
	dir := t.TempDir()
	from := 1
	for round := range 50 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "MITMWATCH_CRASH_FROM="+strconv.Itoa(from))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan int, 1<<16)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if g, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "gen ")); err == nil {
					lines <- g
				}
			}
		}()
		last, ok := <-lines // ready: one generation is in place
		if !ok {
			t.Fatalf("round %d: the writer wrote nothing", round)
		}
		// The kill point, not a wait: anywhere in the next writes.
		<-time.After(rand.N(30 * time.Millisecond))
		cmd.Process.Kill()
		cmd.Wait()
		for g := range lines {
			last = g
		}

		logs := &logSink{}
		d, err := New(Options{Load: (&loader{}).load, NewRunner: func(*config.Config) *check.Runner { return nil }, StateDir: dir, Logger: slog.New(logs)})
		if err != nil {
			t.Fatal(err)
		}
		if aside := logs.find("state file unusable, set aside; starting empty", nil); len(aside) > 0 {
			t.Fatalf("round %d: torn state: %v", round, aside[0].Attrs)
		}
		restored := logs.find("state restored", nil)
		if len(restored) != 1 {
			t.Fatalf("round %d: restore logged %d times", round, len(restored))
		}
		got := int(d.restored["host-000.example:443"].Probes)
		if len(d.restored) != crashTargets || (got != last && got != last+1) {
			t.Fatalf("round %d: restored %d targets of generation %d; acknowledged %d", round, len(d.restored), got, last)
		}
		if s := restored[0].str("saved_at"); !strings.Contains(s, time.Unix(int64(got), 0).UTC().Format("2006-01-02 15:04:05")) &&
			!strings.Contains(s, time.Unix(int64(got), 0).Format("2006-01-02 15:04:05")) {
			t.Errorf("round %d: the log says saved_at %s, not generation %d", round, s, got)
		}
		b, err := baseline.Load(filepath.Join(dir, "baseline.json"))
		if err != nil {
			t.Fatalf("round %d: torn baseline: %v", round, err)
		}
		if bg := int(b.LearnedAt.Unix()); bg != last && bg != last+1 {
			t.Fatalf("round %d: baseline of generation %d; acknowledged %d", round, bg, last)
		}
		from = last + 2
	}
}
