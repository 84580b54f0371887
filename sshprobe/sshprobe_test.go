package sshprobe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/sshprobe"
	"github.com/mitmwatch/mitmwatch/sshprobe/sshtest"
)

func newKey(t *testing.T) sshtest.Key {
	t.Helper()
	k, err := sshtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func closedPort(t *testing.T) string {
	t.Helper()
	a, err := sshtest.ClosedPort()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func probe(t *testing.T, target sshprobe.Target, timeout time.Duration) detector.Observation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var p sshprobe.Prober
	return p.Probe(ctx, target)
}

func server(t *testing.T, start func() (*sshtest.Server, error)) *sshtest.Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestProbeReadsTheHostKey(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	srv := server(t, func() (*sshtest.Server, error) { return sshtest.NewServer(key, "OpenSSH_9.6") })
	obs := probe(t, sshprobe.Target{Host: "git.lab.example", Port: 22, Address: srv.Addr()}, 5*time.Second)
	if obs.Failure != detector.FailureNone {
		t.Fatalf("failure %s: %s", obs.Failure, obs.FailureDetail)
	}
	if obs.Protocol != detector.ProtocolSSH || obs.SSH == nil || obs.SSH.HostKey == nil {
		t.Fatalf("no host key: %+v", obs)
	}
	if got, want := obs.SSH.HostKey.SHA256, key.Fingerprint(); got != want {
		t.Errorf("fingerprint %s, want %s", got, want)
	}
	if obs.SSH.HostKey.Type != "ssh-ed25519" || obs.SSH.Banner != "SSH-2.0-OpenSSH_9.6" {
		t.Errorf("type %q banner %q", obs.SSH.HostKey.Type, obs.SSH.Banner)
	}
	if obs.SSH.Fallback != nil || !obs.ConnectedAddr.IsValid() {
		t.Errorf("fallback %+v, connected %v", obs.SSH.Fallback, obs.ConnectedAddr)
	}
}

func TestProbeFallsBackWhenThePortGivesNoAnswer(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	alt := server(t, func() (*sshtest.Server, error) { return sshtest.NewServer(key, "babeld-1") })
	closed := closedPort(t)
	silent := server(t, func() (*sshtest.Server, error) { return sshtest.NewSilent() })
	for _, c := range []struct {
		name, addr string
		want       detector.Failure
	}{
		{"refused", closed, detector.FailureRefused},
		{"silent", silent.Addr(), detector.FailureTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			obs := probe(t, sshprobe.Target{Host: "git.lab.example", Port: 22, Address: c.addr, Fallback: alt.Addr()}, 2*time.Second)
			if obs.Failure != c.want {
				t.Errorf("failure %s (%s), want %s", obs.Failure, obs.FailureDetail, c.want)
			}
			fb := obs.SSH.Fallback
			if !fb.Answered() || fb.HostKey.SHA256 != key.Fingerprint() || fb.Endpoint != alt.Addr() {
				t.Fatalf("fallback %+v", fb)
			}
			if fb.Banner != "SSH-2.0-babeld-1" {
				t.Errorf("fallback banner %q", fb.Banner)
			}
		})
	}
}

func TestProbeNamesWhatIsNotSSH(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	alt := server(t, func() (*sshtest.Server, error) { return sshtest.NewServer(key, "OpenSSH_9.6") })
	page := "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nVia: 1.1 filter.corp.example\r\n\r\n<html><title>Access denied by policy</title></html>"
	for _, c := range []struct {
		name, data   string
		status       int
		bannerPrefix string
	}{
		{"block page", page, 403, "HTTP/1.1 403 Forbidden"},
		{"another protocol", "220 mail.lab.example ESMTP ready\r\n", 0, "220 mail.lab.example"},
		{"tls alert", "\x15\x03\x03\x00\x02\x02\x46", 0, "\x15\x03"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := server(t, func() (*sshtest.Server, error) { return sshtest.NewRaw([]byte(c.data)) })
			obs := probe(t, sshprobe.Target{Host: "git.lab.example", Port: 22, Address: srv.Addr(), Fallback: alt.Addr()}, 3*time.Second)
			if obs.Failure != detector.FailureNotSSH {
				t.Fatalf("failure %s (%s), want %s", obs.Failure, obs.FailureDetail, detector.FailureNotSSH)
			}
			if !strings.HasPrefix(obs.SSH.Banner, c.bannerPrefix) {
				t.Errorf("banner %q, want it to start %q", obs.SSH.Banner, c.bannerPrefix)
			}
			if obs.SSH.Fallback != nil {
				t.Errorf("a port that answered needs no fallback: %+v", obs.SSH.Fallback)
			}
			if c.status != 0 {
				if obs.Plain == nil || obs.Plain.Status != c.status || obs.Plain.Title != "Access denied by policy" {
					t.Errorf("plain answer %+v", obs.Plain)
				}
			}
		})
	}
}

// TestProbeThroughJudgement: the probe's observations judged with the
// pins give the verdicts the issue asks for.
func TestProbeThroughJudgement(t *testing.T) {
	t.Parallel()
	real := newKey(t)
	mitm := newKey(t)
	genuine := server(t, func() (*sshtest.Server, error) { return sshtest.NewServer(real, "OpenSSH_9.6") })
	interceptor := server(t, func() (*sshtest.Server, error) { return sshtest.NewServer(mitm, "OpenSSH_9.6") })
	closed := closedPort(t)
	pins := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{real.Fingerprint()}}
	for _, c := range []struct {
		name   string
		target sshprobe.Target
		want   detector.Verdict
	}{
		{"pinned key", sshprobe.Target{Host: "git.lab.example", Port: 22, Address: genuine.Addr()}, detector.OK},
		{"another key", sshprobe.Target{Host: "git.lab.example", Port: 22, Address: interceptor.Addr()}, detector.Intercepted},
		{"port closed, fallback open", sshprobe.Target{Host: "git.lab.example", Port: 22, Address: closed, Fallback: genuine.Addr()}, detector.Blocked},
		{"port closed, no fallback", sshprobe.Target{Host: "git.lab.example", Port: 22, Address: closed}, detector.Unreachable},
	} {
		obs := probe(t, c.target, 3*time.Second)
		r := detector.Judge([]detector.Case{{Obs: obs, Expect: pins}}, detector.Policy{}, time.Now())[0]
		if r.Verdict != c.want {
			t.Errorf("%s: verdict %s, want %s; findings %+v", c.name, r.Verdict, c.want, r.Findings)
		}
	}
}
