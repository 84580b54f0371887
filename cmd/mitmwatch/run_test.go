//go:build !lean

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// service is `mitmwatch run` started in-process on a free port.
type service struct {
	t      *testing.T
	base   string
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
}

// syncBuffer is a log sink the test reads while the service writes.
type syncBuffer struct {
	ch  chan struct{}
	buf bytes.Buffer
	mu  chan struct{}
}

func newSyncBuffer() *syncBuffer {
	b := &syncBuffer{mu: make(chan struct{}, 1)}
	return b
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func startService(t *testing.T, args ...string) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	s := &service{t: t, cancel: cancel, done: make(chan int, 1), stderr: newSyncBuffer()}
	go func() {
		s.done <- run(ctx, append([]string{"run", "--web.listen-address=127.0.0.1:0"}, args...), env{
			stdout: io.Discard, stderr: s.stderr, getenv: func(string) string { return "" },
			onListen: func(ls []net.Listener) { addr <- ls[0].Addr().String() },
		})
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case code := <-s.done:
		t.Fatalf("run exited %d before listening: %s", code, s.stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not listen within 10s")
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// stop ends the service as SIGTERM would and returns its exit code.
func (s *service) stop() int {
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // later calls see it too
		return code
	case <-time.After(15 * time.Second):
		s.t.Fatal("run did not stop within 15s")
		return -1
	}
}

func (s *service) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.base + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (s *service) post(path string) int {
	s.t.Helper()
	resp, err := http.Post(s.base+path, "text/plain", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls the service until ok holds, within a bound: readiness, not
// a sleep.
func (s *service) waitFor(what string, ok func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within 15s; log:\n%s", what, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunServesMetricsStatusAndReload(t *testing.T) {
	e := newEnv(t)
	rules := writeRules(t, e, "", labTarget{"github.com", e.Origin.Addr()})
	data, err := os.ReadFile(rules)
	must(t, err)
	must(t, os.WriteFile(rules, bytes.Replace(data, []byte("probe:\n"), []byte("probe:\n  interval: 1s\n"), 1), 0o644))
	state := t.TempDir()
	s := startService(t, "--config", rules, "--state.dir", state, "--web.enable-lifecycle")

	s.waitFor("ready", func() bool { code, _ := s.get("/-/ready"); return code == 200 })
	if code, _ := s.get("/-/healthy"); code != 200 {
		t.Errorf("/-/healthy %d", code)
	}
	_, metrics := s.get("/metrics")
	for _, want := range []string{
		`mitmwatch_target_verdict{target="github.com:443",verdict="ok"} 1`,
		`mitmwatch_config_last_reload_successful 1`,
		`mitmwatch_probe_interval_seconds{target="github.com:443"} 1`,
		`mitmwatch_build_info{`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, page := s.get("/"); code != 200 || !strings.Contains(page, "github.com") {
		t.Errorf("status page %d", code)
	}

	if code, _ := s.get("/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}
	if code := s.post("/-/reload"); code != 200 {
		t.Errorf("POST /-/reload = %d", code)
	}
	must(t, os.WriteFile(rules, []byte("targets:\n  - host: github.com\n    port: 0\n"), 0o644))
	if code := s.post("/-/reload"); code != http.StatusInternalServerError {
		t.Errorf("POST /-/reload with a broken file = %d, want 500", code)
	}
	// A scrape may be served a rendering up to a second old.
	s.waitFor("the failed reload in /metrics", func() bool {
		_, metrics = s.get("/metrics")
		return strings.Contains(metrics, "mitmwatch_config_last_reload_successful 0")
	})
	if !strings.Contains(metrics, `mitmwatch_target_verdict{target="github.com:443",verdict="ok"} 1`) {
		t.Errorf("after a bad reload the last good config should keep running:\n%s", grep(metrics, "mitmwatch_"))
	}

	if code := s.stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM; log:\n%s", code, s.stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "state.json")); err != nil {
		t.Errorf("no state saved: %v", err)
	}
}

// Without --web.enable-lifecycle nothing on the port changes the service's
// state: /-/reload answers 403 and the config is not read again.
func TestRunLifecycleOffByDefault(t *testing.T) {
	e := newEnv(t)
	rules := writeRules(t, e, "", labTarget{"github.com", e.Origin.Addr()})
	s := startService(t, "--config", rules, "--state.dir", t.TempDir())
	s.waitFor("ready", func() bool { code, _ := s.get("/-/ready"); return code == 200 })
	must(t, os.WriteFile(rules, []byte("targets:\n  - host: github.com\n    port: 0\n"), 0o644))
	if code := s.post("/-/reload"); code != http.StatusForbidden {
		t.Errorf("POST /-/reload without --web.enable-lifecycle = %d, want 403", code)
	}
	if _, metrics := s.get("/metrics"); !strings.Contains(metrics, "mitmwatch_config_last_reload_successful 1") {
		t.Errorf("a refused reload read the config:\n%s", grep(metrics, "mitmwatch_config"))
	}
}

// With --web.systemd-socket the service serves on the sockets systemd
// passed and binds no address of its own; without any it refuses to start.
func TestListenSystemdSocket(t *testing.T) {
	passed, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer passed.Close()
	on, addrs := true, []string{"127.0.0.1:1"} // port 1 would fail if bound
	flags := &web.FlagConfig{WebSystemdSocket: &on, WebListenAddresses: &addrs}
	ls, err := listen(flags, func() ([]net.Listener, error) { return []net.Listener{nil, passed}, nil })
	if err != nil || len(ls) != 1 || ls[0] != passed {
		t.Fatalf("listen with a passed socket = %v, %v; want the passed listener", ls, err)
	}
	if _, err := listen(flags, func() ([]net.Listener, error) { return nil, nil }); err == nil ||
		!strings.Contains(err.Error(), "mitmwatch.socket") {
		t.Errorf("listen with no passed socket: %v, want an error naming mitmwatch.socket", err)
	}
	off := false
	flags.WebSystemdSocket = &off
	addrs = []string{"vsock://:notaport"}
	if _, err := listen(flags, nil); err == nil || !strings.Contains(err.Error(), "vsock") {
		t.Errorf("listen on vsock://:notaport: %v, want a vsock port error", err)
	}
}

func TestRunRefusesBrokenConfigAtStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "rules.yaml")
	must(t, os.WriteFile(bad, []byte("toolchain: maybe\n"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	code := run(ctx, []string{"run", "--config", bad, "--state.dir", t.TempDir(), "--web.listen-address=127.0.0.1:0"},
		env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }})
	if code != 2 || !strings.Contains(stderr.String(), "toolchain") {
		t.Errorf("exit %d, %s", code, stderr.String())
	}
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
