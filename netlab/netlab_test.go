//go:build linux

package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/fingerprints"
)

// fixtures makes TestScenarios write the chains the client is presented
// in each intercepting scenario to ../fingerprints/testdata/forged/, the
// captures fingerprints' behaviour tests read. Review the diff like code.
var fixtures = flag.Bool("netlab.fixtures", false, "write the forged chains to ../fingerprints/testdata/forged/")

// fixtureHosts are the hosts whose chains a fixture keeps: enough to show
// what repeats across hosts, small enough to read.
var fixtureHosts = Hosts[:3]

// binDir holds the mitmwatch binary built for the whole run.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "netlab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipOrFail skips the test, or fails it when MITMWATCH_REQUIRE_TOOLS=1
// (CI, as root with every package installed, must run the lab).
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s (MITMWATCH_REQUIRE_TOOLS=1)", msg)
	}
	t.Skipf("%s; set MITMWATCH_REQUIRE_TOOLS=1 to fail instead of skipping", msg)
}

// requireLab skips unless the lab can run here: root, the programs of
// Tools, and a kernel that lets us create a network namespace.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "netlab needs root to create network namespaces")
	}
	if missing := MissingTools(); len(missing) > 0 {
		slices.Sort(missing)
		skipOrFail(t, "netlab needs "+strings.Join(missing, ", ")+": apt-get install nftables iptables mitmproxy sslsplit squid-openssl haproxy")
	}
	var id [4]byte
	rand.Read(id[:])
	probe := "netlab-probe-" + hex.EncodeToString(id[:])
	if err := run("ip", "netns", "add", probe); err != nil {
		skipOrFail(t, "cannot create a network namespace: "+err.Error())
	}
	if err := delNetns(probe); err != nil {
		t.Fatal(err)
	}
	if ids, err := Prune(); err != nil {
		t.Logf("pruning dead labs: %v", err)
	} else if len(ids) > 0 {
		t.Logf("pruned the leftovers of dead labs %v", ids)
	}
}

// buildOnce builds ./cmd/mitmwatch the first time a test needs it.
var buildOnce = sync.OnceValues(func() (string, error) {
	out := filepath.Join(binDir, "mitmwatch")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/mitmwatch")
	cmd.Dir = ".." // the module root, from this package's directory
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mitmwatch: %w\n%s", err, msg)
	}
	return out, nil
})

// TestScenarios runs the compiled mitmwatch in the client namespace of a
// fresh lab per scenario and checks what it reports for every target, then
// names the product from the forged chains' behaviour alone.
func TestScenarios(t *testing.T) {
	requireLab(t)
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			l, err := Up(s)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := l.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			r, err := l.Check(bin)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, l, s.Want, r)
			for _, tg := range r.Targets {
				if p := s.TimingProblem(tg); p != "" {
					t.Errorf("%s: %s", tg.Host, p)
				}
			}
			if s.Want.Within > 0 && r.Elapsed > s.Want.Within {
				t.Errorf("the check took %v, want under %v", r.Elapsed, s.Want.Within)
			}
			for _, tg := range r.Targets {
				if _, ok := s.Want.Hosts[tg.Host]; ok {
					t.Logf("%s: %s after %.1f ms, control %s; the check took %v", tg.Host, tg.Failure, tg.HandshakeMS, tg.Control, r.Elapsed)
				}
			}
			// A blocked host has no chain to show; the others' are the
			// origins' own, as in the clean scenario.
			if s.Want.Verdict == "unreachable" || len(s.Want.Hosts) > 0 {
				return
			}
			chains, err := l.Chains()
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if m, ok := fingerprints.IdentifyByBehaviour(chains); ok {
				got = m.Product
			}
			if got != s.Want.Behaviour {
				t.Errorf("IdentifyByBehaviour named %q, want %q", got, s.Want.Behaviour)
			}
			// A middlebox that does not decrypt must hand the origins'
			// own chains through.
			if l.Interceptor != nil && l.Interceptor.CA == nil {
				if err := l.VerifyGenuine(chains); err != nil {
					t.Error(err)
				}
			}
			if *fixtures && s.Delay == 0 && !strings.HasSuffix(s.Name, "-approved") {
				writeFixture(t, l, chains)
			}
		})
	}
}

// checkReport compares every target's verdict, product and path with want,
// and the exit code.
func checkReport(t *testing.T, l *Lab, want Want, r *Report) {
	t.Helper()
	if r.ExitCode != want.ExitCode {
		t.Errorf("exit code %d, want %d", r.ExitCode, want.ExitCode)
	}
	seen := map[string]bool{}
	for _, tg := range r.Targets {
		seen[tg.Host] = true
		if w := want.For(tg.Host); tg.Verdict != w.Verdict || tg.Product != w.Product || tg.Path != w.Path {
			t.Errorf("%s: verdict %q product %q path %q (failure %q, findings %v, path trace %s, control %s), want %q %q %q",
				tg.Host, tg.Verdict, tg.Product, tg.Path, tg.Failure, tg.Reasons(), tg.PathTrace, tg.Control, w.Verdict, w.Product, w.Path)
		}
		if missing := want.MissingReasons(tg); len(missing) > 0 {
			t.Errorf("%s: findings %v lack %v (path trace %s)", tg.Host, tg.Reasons(), missing, tg.PathTrace)
		}
	}
	for _, h := range Hosts {
		if !seen[h] {
			t.Errorf("%s: not in the report", h)
		}
	}
	checkGrade(t, l, want, r)
	if t.Failed() {
		t.Logf("mitmwatch stderr:\n%s", r.Stderr)
		for _, p := range l.procs {
			t.Logf("%s log:\n%s", p.Name, p.Tail())
		}
	}
}

// writeFixture writes the chains of fixtureHosts as
// ../fingerprints/testdata/forged/NAME.pem.
func writeFixture(t *testing.T, l *Lab, chains map[string][]*x509.Certificate) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteChains(&b, chains, fixtureHosts, l.ChainRoot()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "fingerprints", "testdata", "forged")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, l.Scenario+".pem"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFailedSetupLeavesNothing: when a scenario's setup fails half-way (an
// interceptor that dies at start), Up reports why and leaves no namespace,
// /etc/netns entry, record, directory or process behind.
func TestFailedSetupLeavesNothing(t *testing.T) {
	requireLab(t)
	var l *Lab
	var p *Proc
	s := Scenario{Name: "broken", Setup: func(lab *Lab) (err error) {
		l = lab
		if p, err = lab.Start(lab.Router, "false", nil, "false"); err != nil {
			return err
		}
		return waitListening(lab.Router, RouterAddr.String()+":9", p)
	}}
	if _, err := Up(s); err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Fatalf("Up: %v", err)
	}
	assertGone(t, l)
	if !p.Exited() {
		t.Error("the process still runs")
	}
}

// TestPrune: the leftovers of a lab whose owner died (here: a record whose
// owner no longer matches) are removed, its processes killed; a live lab
// is left alone.
func TestPrune(t *testing.T) {
	requireLab(t)
	dead, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	p, err := dead.Start(dead.Router, "sleep", nil, "sleep", "120")
	if err != nil {
		t.Fatal(err)
	}
	dead.record.Owner.Start = "not-this-process"
	if err := dead.record.save(dead); err != nil {
		t.Fatal(err)
	}
	live, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })

	ids, err := Prune()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, dead.ID) || slices.Contains(ids, live.ID) {
		t.Errorf("pruned %v; want %s and not %s", ids, dead.ID, live.ID)
	}
	deadline := time.Now().Add(readyTimeout)
	for !p.Exited() && time.Now().Before(deadline) {
		time.Sleep(pollEvery)
	}
	if !p.Exited() {
		t.Error("the dead lab's process still runs")
	}
	assertGone(t, dead)
	if _, err := os.Stat(filepath.Join(netnsDir, live.Client)); err != nil {
		t.Errorf("the live lab lost its namespace: %v", err)
	}
}

// assertGone checks that nothing of l is left on the machine.
func assertGone(t *testing.T, l *Lab) {
	t.Helper()
	for _, path := range []string{
		filepath.Join(netnsDir, l.Client), filepath.Join(netnsDir, l.Router), filepath.Join(netnsDir, l.Internet),
		filepath.Join(etcNetnsDir, l.Client), filepath.Join(etcNetnsDir, l.Router),
		filepath.Join(RecordDir, l.ID+".json"), l.Dir,
	} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left behind (%v)", path, err)
		}
	}
}

// checkGrade compares the grading with want (Want.GradeProblems), and
// logs every check with -v: the record of what the program did.
func checkGrade(t *testing.T, l *Lab, want Want, r *Report) {
	t.Helper()
	if testing.Verbose() && len(r.Interceptors) > 0 {
		for _, c := range r.Interceptors[0].Checks {
			t.Logf("grade %s: %s %s: %s", r.Interceptors[0].Grade, c.Check, c.Result, c.Detail)
		}
	}
	for _, p := range want.GradeProblems(l, r) {
		t.Errorf("grade: %s", p)
	}
}
