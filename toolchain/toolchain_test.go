package toolchain

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeNPM is an npm that answers `config get registry` with registry and
// records every command it is asked to run.
type fakeNPM struct {
	bin      string // what LookPath finds
	registry string
	err      error

	mu    sync.Mutex
	calls []string
}

func newFakeNPM(t *testing.T, registry string) *fakeNPM {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "npm")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fakeNPM{bin: bin, registry: registry}
}

func (f *fakeNPM) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return []byte(f.registry + "\n"), nil
}

func (f *fakeNPM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// options discovers with f as the installed npm and cache as the cache
// directory.
func (f *fakeNPM) options(cache string) Options {
	return Options{Run: f.run, LookPath: func(string) (string, error) { return f.bin, nil }, CacheDir: cache}
}

func discover(t *testing.T, s Settings, o Options) []Host {
	t.Helper()
	hosts, errs := Discover(context.Background(), s, o)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	return hosts
}

// TestDiscoverFromSettings: when the settings name npm's registry, the
// hosts are theirs, deduplicated, and no tool is started.
func TestDiscoverFromSettings(t *testing.T) {
	t.Parallel()
	npm := newFakeNPM(t, "https://default.lab.example/")
	s := Settings{NPMRegistry: true, Hosts: []Host{
		{"proxy.lab.example", 443, "GOPROXY (go env)"},
		{"npm.lab.example", 443, "registry (/home/u/.npmrc:1)"},
		{"proxy.lab.example", 443, "global.index-url (/etc/pip.conf:2)"},
	}}
	got := discover(t, s, npm.options(t.TempDir()))
	if diff := cmp.Diff(s.Hosts[:2], got); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	if npm.count() != 0 {
		t.Errorf("ran %v; the settings answer", npm.calls)
	}
}

// TestDiscoverNPMDefaultCached: with no registry configured npm is asked
// once; later discoveries read the cache until the npm binary changes.
func TestDiscoverNPMDefaultCached(t *testing.T) {
	t.Parallel()
	npm := newFakeNPM(t, "https://default.lab.example:4873/")
	cache := t.TempDir()
	s := Settings{Hosts: []Host{{"proxy.lab.example", 443, "GOPROXY (go env)"}}}
	want := []Host{s.Hosts[0], {"default.lab.example", 4873, "npm config get registry"}}
	for i := range 2 {
		if diff := cmp.Diff(want, discover(t, s, npm.options(cache))); diff != "" {
			t.Errorf("discovery %d: hosts (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff([]string{npm.bin + " config get registry"}, npm.calls); diff != "" {
		t.Fatalf("commands (-want +got):\n%s", diff)
	}

	// Another npm answers the same path: an upgrade changes the size or
	// the modification time.
	npm.registry = "https://upgraded.lab.example/"
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(npm.bin, later, later); err != nil {
		t.Fatal(err)
	}
	if got := discover(t, s, npm.options(cache)); len(got) != 2 || got[1].Host != "upgraded.lab.example" || npm.count() != 2 {
		t.Errorf("after the binary changed: %v after %d runs; want npm asked again", got, npm.count())
	}
	discover(t, s, npm.options(cache))
	if npm.count() != 2 {
		t.Errorf("the new answer was not cached: %d runs", npm.count())
	}
}

// TestDiscoverNPMKeyedByResolvedPath: npm is found through a symbolic link
// (as /usr/bin/npm is); pointing it at another installation asks again.
func TestDiscoverNPMKeyedByResolvedPath(t *testing.T) {
	t.Parallel()
	a, b := newFakeNPM(t, "https://a.lab.example/"), newFakeNPM(t, "https://b.lab.example/")
	link := filepath.Join(t.TempDir(), "npm")
	cache := t.TempDir()
	for _, npm := range []*fakeNPM{a, b, a} {
		os.Remove(link)
		if err := os.Symlink(npm.bin, link); err != nil {
			t.Fatal(err)
		}
		o := npm.options(cache)
		o.LookPath = func(string) (string, error) { return link, nil }
		got := discover(t, Settings{}, o)
		if len(got) != 1 || !strings.HasPrefix(npm.registry, "https://"+got[0].Host) {
			t.Errorf("through the link to %s: %v", npm.bin, got)
		}
	}
	if a.count() != 1 || b.count() != 1 {
		t.Errorf("runs: a %d, b %d; want one each, the second use of a from the cache", a.count(), b.count())
	}
}

// TestDiscoverCorruptCache: a cache that does not parse is ignored and
// rewritten.
func TestDiscoverCorruptCache(t *testing.T) {
	t.Parallel()
	npm := newFakeNPM(t, "https://default.lab.example/")
	cache := t.TempDir()
	file := filepath.Join(cache, cacheName)
	if err := os.WriteFile(file, []byte(`{"npm": [{"path": `), 0o644); err != nil {
		t.Fatal(err)
	}
	discover(t, Settings{}, npm.options(cache))
	discover(t, Settings{}, npm.options(cache))
	if npm.count() != 1 {
		t.Errorf("npm ran %d times; want once, then the rewritten cache", npm.count())
	}
	if c := readCache(file); len(c.NPM) != 1 || c.NPM[0].Registry != "https://default.lab.example/" {
		t.Errorf("cache after rewrite: %+v", c)
	}
}

// TestDiscoverNPMAbsentOrFailing: no npm is no host and no error; a
// failing npm is an error, the settings' hosts still count, and its
// failure is not cached.
func TestDiscoverNPMAbsentOrFailing(t *testing.T) {
	t.Parallel()
	s := Settings{Hosts: []Host{{"proxy.lab.example", 443, "GOPROXY (go env)"}}}
	absent := Options{
		LookPath: func(f string) (string, error) { return "", &exec.Error{Name: f, Err: exec.ErrNotFound} },
		Run:      func(context.Context, string, ...string) ([]byte, error) { panic("ran a tool that is not installed") },
	}
	if diff := cmp.Diff(s.Hosts, discover(t, s, absent)); diff != "" {
		t.Errorf("without npm (-want +got):\n%s", diff)
	}

	npm := newFakeNPM(t, "")
	npm.err = errors.New("exit status 1: npm ERR! cb() never called")
	cache := t.TempDir()
	for range 2 {
		hosts, errs := Discover(context.Background(), s, npm.options(cache))
		if diff := cmp.Diff(s.Hosts, hosts); diff != "" {
			t.Errorf("with a failing npm (-want +got):\n%s", diff)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "toolchain: npm config get registry: exit status 1") {
			t.Errorf("errors: %v", errs)
		}
	}
	if npm.count() != 2 {
		t.Errorf("npm ran %d times; a failure must not be cached", npm.count())
	}
}

// TestDiscoverBounded: a wedged npm is cut off by the per-command
// deadline, and the caller's context bounds everything.
func TestDiscoverBounded(t *testing.T) {
	t.Parallel()
	npm := newFakeNPM(t, "")
	var deadline time.Duration
	o := npm.options(t.TempDir())
	o.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		if d, ok := ctx.Deadline(); ok {
			deadline = time.Until(d)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	hosts, errs := Discover(ctx, Settings{}, o)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Discover took %v", elapsed)
	}
	if len(hosts) != 0 || len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Errorf("got %v, %v; want no host and a deadline error", hosts, errs)
	}
	if deadline <= 0 || deadline > commandTimeout {
		t.Errorf("npm ran with a deadline %v away, want at most %v", deadline, commandTimeout)
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

// TestDiscoverRealNPM asks the real npm, in a home of its own, for its
// default registry: its output is what the parser expects.
func TestDiscoverRealNPM(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skipf("npm is not installed: %v", err)
	}
	home := t.TempDir()
	o := Options{CacheDir: t.TempDir(), Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "npm_config_update_notifier=false"}
		return cmd.Output()
	}}
	hosts := discover(t, Settings{}, o)
	if len(hosts) != 1 || hosts[0].Port != 443 || hosts[0].Source != "npm config get registry" {
		t.Errorf("npm's default registry: %+v; want one https host", hosts)
	}
}
