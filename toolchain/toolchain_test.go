package toolchain

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeRunner answers commands from a table; commands not in it are not
// installed.
type fakeRunner map[string]struct {
	out string
	err error
}

func (f fakeRunner) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	r, ok := f[name+" "+strings.Join(args, " ")]
	if !ok {
		return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	return []byte(r.out), r.err
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	run := fakeRunner{
		"go env GOPROXY GOSUMDB":  {out: "https://proxy.lab.example,https://mirror.lab.example|direct\nsum.lab.example+1234abcd+AQID\n"},
		"npm config get registry": {out: "https://mirror.lab.example/npm/\n"},
		// pip is missing; pip3 answers.
		"pip3 config list": {out: "global.index-url='https://pypi.lab.example/simple'\nglobal.extra-index-url='https://extra.lab.example/simple'\n"},
	}
	hosts, errs := Discover(context.Background(), run.run, env(map[string]string{
		"PIP_INDEX_URL":       "https://pypi.lab.example/simple",
		"PIP_EXTRA_INDEX_URL": "https://env1.lab.example/ https://env2.lab.example:8443/",
	}))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	want := []Host{
		{"proxy.lab.example", 443, "go env GOPROXY"},
		{"mirror.lab.example", 443, "go env GOPROXY"}, // npm's use of the same host is folded in
		{"sum.lab.example", 443, "go env GOSUMDB"},
		{"pypi.lab.example", 443, "PIP_INDEX_URL"}, // the environment wins over pip config
		{"env1.lab.example", 443, "PIP_EXTRA_INDEX_URL"},
		{"env2.lab.example", 8443, "PIP_EXTRA_INDEX_URL"},
		{"extra.lab.example", 443, "pip config (global.extra-index-url)"},
	}
	if diff := cmp.Diff(want, hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func TestDiscoverFailures(t *testing.T) {
	t.Parallel()
	run := fakeRunner{
		"go env GOPROXY GOSUMDB":  {err: errors.New("exit status 1: go: GOPROXY list is not the empty string")},
		"npm config get registry": {out: "https://npm.lab.example/\n"},
		"pip config list":         {err: errors.New("exit status 1: No module named pip")},
	}
	hosts, errs := Discover(context.Background(), run.run, env(nil))
	if diff := cmp.Diff([]Host{{"npm.lab.example", 443, "npm config get registry"}}, hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	want := []string{
		"toolchain: go env GOPROXY GOSUMDB: exit status 1: go: GOPROXY list is not the empty string",
		"toolchain: pip config list: exit status 1: No module named pip",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestDiscoverNothingInstalled(t *testing.T) {
	t.Parallel()
	hosts, errs := Discover(context.Background(), fakeRunner{}.run, env(nil))
	if len(hosts) != 0 || len(errs) != 0 {
		t.Errorf("got %v, %v; want nothing", hosts, errs)
	}
}

// TestDiscoverBounded checks that a wedged tool is cut off by the per-command
// deadline, and that the caller's context bounds everything.
func TestDiscoverBounded(t *testing.T) {
	t.Parallel()
	var deadlines []time.Duration
	hang := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		if d, ok := ctx.Deadline(); ok && name == "go" {
			deadlines = append(deadlines, time.Until(d))
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	hosts, errs := Discover(ctx, hang, env(nil))
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Discover took %v", elapsed)
	}
	if len(hosts) != 0 || len(errs) != 3 {
		t.Fatalf("got %v, %v; want no hosts and three errors", hosts, errs)
	}
	for _, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v is not a deadline error", err)
		}
	}
	if len(deadlines) != 1 || deadlines[0] > commandTimeout {
		t.Errorf("go ran with deadlines %v, want one of at most %v", deadlines, commandTimeout)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := Exec(ctx, "mitmwatch-no-such-tool"); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing binary: got %v, want exec.ErrNotFound", err)
	}
	_, err := Exec(ctx, "go", "mitmwatch-no-such-command")
	if err == nil || !strings.Contains(err.Error(), "exit status") || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("failing command: got %v, want the exit status and stderr's first line", err)
	}
}

// sumdbKey returns a syntactically valid checksum database verifier key, as
// the go command's note package builds them: name+hash+base64(alg||pubkey).
func sumdbKey(t *testing.T, name string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := append([]byte{1}, pub...) // 1: Ed25519
	sum := sha256.Sum256(append([]byte(name+"\n"), key...))
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(sum[:]), base64.StdEncoding.EncodeToString(key))
}

// TestDiscoverRealGo runs the real go command with a lab configuration.
func TestDiscoverRealGo(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed: %v", err)
	}
	run := ExecEnv(
		"GOPROXY=https://proxy.lab.example,direct",
		"GOSUMDB="+sumdbKey(t, "sum.lab.example")+" https://sumdb.lab.example",
	)
	onlyGo := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		if name != "go" {
			return nil, exec.ErrNotFound
		}
		return run(ctx, name, args...)
	}
	hosts, errs := Discover(context.Background(), onlyGo, env(nil))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	want := []Host{
		{"proxy.lab.example", 443, "go env GOPROXY"},
		{"sumdb.lab.example", 443, "go env GOSUMDB"},
	}
	if diff := cmp.Diff(want, hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

// TestDiscoverRealNPM runs the real npm with a lab registry.
func TestDiscoverRealNPM(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skipf("npm is not installed: %v", err)
	}
	run := ExecEnv("npm_config_registry=https://npm.lab.example:4873/", "npm_config_update_notifier=false")
	onlyNPM := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		if name != "npm" {
			return nil, exec.ErrNotFound
		}
		return run(ctx, name, args...)
	}
	hosts, errs := Discover(context.Background(), onlyNPM, env(nil))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	want := []Host{{"npm.lab.example", 4873, "npm config get registry"}}
	if diff := cmp.Diff(want, hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}
