//go:build linux

package netlab

import (
	"slices"
	"strings"
	"testing"
)

// TestSSHScenarios runs the compiled mitmwatch in the client namespace
// against a real OpenSSH sshd: the host's key pinned is ok, an sshd on the
// router answering with its own key is intercepted, a port the router
// refuses while the fallback endpoint answers is blocked.
func TestSSHScenarios(t *testing.T) {
	requireLab(t)
	if missing := MissingSSHTools(); len(missing) > 0 {
		skipOrFail(t, "the SSH scenarios need "+strings.Join(missing, ", ")+": apt-get install openssh-server")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range SSHScenarios {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			l, real, err := UpSSH(s)
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
			if r.ExitCode != s.ExitCode {
				t.Errorf("exit code %d, want %d", r.ExitCode, s.ExitCode)
			}
			if len(r.Targets) != 1 {
				t.Fatalf("%d targets in the report, want the SSH one", len(r.Targets))
			}
			tg := r.Targets[0]
			if tg.Host != "github.com" || tg.Verdict != s.Verdict || (s.Reason != "" && !slices.Contains(tg.Reasons(), s.Reason)) {
				t.Errorf("github.com over SSH: verdict %q findings %v (failure %q), want %q with %q", tg.Verdict, tg.Reasons(), tg.Failure, s.Verdict, s.Reason)
			}
			if r.Elapsed > sshCheckWithin {
				t.Errorf("the check took %v, want under %v", r.Elapsed, sshCheckWithin)
			}
			if t.Failed() {
				t.Logf("pinned %s; mitmwatch stderr:\n%s", real.Fingerprint, r.Stderr)
				for _, p := range l.procs {
					t.Logf("%s log:\n%s", p.Name, p.Tail())
				}
			}
		})
	}
}
