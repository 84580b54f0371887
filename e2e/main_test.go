package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/scenario"
)

// binDir holds what TestMain builds for the whole run: the mitmwatch binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mitmwatch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildOnce builds ./cmd/mitmwatch the first time a test asks for it, so a
// run whose tests all skip builds nothing.
var buildOnce = sync.OnceValues(func() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(binDir, "mitmwatch")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/mitmwatch")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mitmwatch: %w\n%s", err, msg)
	}
	return out, nil
})

// mitmwatchBinary is the path of the binary built from this tree.
func mitmwatchBinary(t *testing.T) string {
	t.Helper()
	path, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// moduleRoot is the directory of go.mod, as the go command finds it from
// this package's directory (where `go test` runs the test binary).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
}

// requireTool finds a program the test needs. Without it the test skips,
// or fails when MITMWATCH_REQUIRE_TOOLS=1 (CI installs every tool).
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (Debian package %s): %v", name, debianPackage, err)
	if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newLab starts the lab's PKI and genuine origin for one test.
func newLab(t *testing.T) *scenario.Env {
	t.Helper()
	e, err := scenario.NewEnv(scenario.Options{})
	must(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// newForger starts an interceptor signing with ca, closed with the lab.
func newForger(t *testing.T, e *scenario.Env, ca *lab.CA) *lab.Forger {
	t.Helper()
	f, err := lab.NewForger(lab.ForgerOptions{CA: ca})
	must(t, err)
	e.Track(f)
	return f
}

type labTarget struct{ host, addr string }

// writeRules writes a rules.yaml into dir whose trust stores are the lab's
// (plus extraSystem, PEM, in the system store) and whose targets are played
// by lab servers. No resolver outside the lab is ever asked: the reference
// resolvers and the canary are off, and every target has an address.
func writeRules(t *testing.T, dir string, e *scenario.Env, extraSystem []byte, targets ...labTarget) string {
	t.Helper()
	pub, sys := filepath.Join(dir, "public.pem"), filepath.Join(dir, "system.pem")
	must(t, os.WriteFile(pub, e.PKI.PublicPEM(), 0o644))
	must(t, os.WriteFile(sys, append(e.PKI.SystemPEM(), extraSystem...), 0o644))
	var b strings.Builder
	fmt.Fprintf(&b, "toolchain: none\ntrust:\n  public_roots: %s\n  system_roots: %s\n", pub, sys)
	// Grading's default test hosts are public ones: off here.
	b.WriteString("probe:\n  interval: 1s\n  timeout: 2s\ndns:\n  reference_resolvers: []\n  canary: false\ngrade:\n  enabled: never\ntargets:\n")
	for _, tg := range targets {
		fmt.Fprintf(&b, "  - host: %s\n    address: %s\n", tg.host, tg.addr)
	}
	path := filepath.Join(dir, "rules.yaml")
	must(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// process is a subprocess the test started; Cleanup stops it.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, once done is closed
}

// startProcess starts bin with its output collected, and stops it when the
// test ends, showing the output if the test failed.
func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), out: &logBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 5 * time.Second
	must(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(p.out.String(), 8000))
		}
	})
	return p
}

// stop sends SIGTERM and waits, bounded; SIGKILL if that was not enough.
// Both daemons shut down cleanly on SIGTERM: anything but exit status 0 is
// an error.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s after SIGTERM: %v", p.name, p.err)
		}
		return
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not stop within 15s of SIGTERM; killing it", p.name)
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not die after SIGKILL", p.name)
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logBuffer collects a subprocess's output while the test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// daemon is `mitmwatch run` started as a subprocess.
type daemon struct {
	*process
	base string // "http://127.0.0.1:port"
}

// startDaemon runs `mitmwatch run` on a port the kernel picks, learns the
// port from its "listening" log event and waits until it is ready (config
// loaded, first round of probes done).
func startDaemon(t *testing.T, bin, rules, stateDir string) *daemon {
	t.Helper()
	p := startProcess(t, "mitmwatch run", bin, "run", "--config", rules, "--state.dir", stateDir,
		"--web.listen-address=127.0.0.1:0", "--log.format=json", "--log.level=debug")
	d := &daemon{process: p}
	eventually(t, 20*time.Second, "mitmwatch run logs the address it listens on", func() (bool, string) {
		if p.exited() {
			t.Fatalf("mitmwatch run exited (%v):\n%s", p.err, p.out)
		}
		addr := listeningAddr(p.out.String())
		d.base = "http://" + addr
		return addr != "", ""
	})
	eventually(t, 20*time.Second, "mitmwatch run is ready", func() (bool, string) {
		code, body, err := get(d.base + "/-/ready")
		return err == nil && code == http.StatusOK, fmt.Sprint(code, " ", body, err)
	})
	return d
}

// listeningAddr finds the address in the daemon's JSON "listening" event.
func listeningAddr(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var ev struct{ Msg, Address string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "listening" {
			return ev.Address
		}
	}
	return ""
}

var client = &http.Client{Timeout: 5 * time.Second}

func get(url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// eventually polls cond until it holds, and fails the test if it does not
// within timeout, with what cond last said. Waiting is on state, never on
// a guessed duration.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (ok bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a loopback address with a port that was free a moment
// ago, for programs that cannot report the port they bound themselves.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	return addr
}
