package audit

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// TestSSHSettings: the ssh settings that weaken host key checking, for the
// hosts builds reach over SSH, with the file and line ssh took each from:
// the first value obtained wins, as in ssh.
func TestSSHSettings(t *testing.T) {
	t.Parallel()
	bothWays(t, "git", func(t *testing.T, tr *tree) {
		tr.write(filepath.Join(tr.home, ".ssh", "config"), `# build agent
Host github.com
    StrictHostKeyChecking no
Host *.corp.example lab-*
  StrictHostKeyChecking=no
Host printer.lab.example
  StrictHostKeyChecking no
Match exec "test -f /run/ci"
  StrictHostKeyChecking no
Host *
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking yes
Include conf.d/*.conf
`)
		tr.write(filepath.Join(tr.home, ".ssh", "conf.d", "agent.conf"), "Host bitbucket.org\n  StrictHostKeyChecking accept-new\n")
		// Too late: Host * in the user's file gave a value first.
		tr.write(filepath.Join(tr.root, "etc", "ssh", "ssh_config"), "Host gitlab.com\n  StrictHostKeyChecking accept-new\n")
		tr.write(filepath.Join(tr.home, ".gitconfig"), `[remote "origin"]
	url = git@git.corp.example:team/app.git
[remote "mirror"]
	url = ssh://deploy@[2001:db8::22]:2222/srv/app.git
[url "git@github.com:"]
	insteadOf = https://github.com/
[core]
	sshCommand = ssh -o 'StrictHostKeyChecking accept-new'
`)
		tr.env["GIT_SSH_COMMAND"] = `ssh -i /run/key -o StrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null`
		tr.env["GOPROXY"], tr.env["GOSUMDB"] = "off", "off"
		r := tr.audit(false)
		checkFindings(t, tr, only(r.Findings, "ssh", "git"), []string{
			"critical ssh Host github.com: StrictHostKeyChecking no @$T/home/.ssh/config:3",
			"critical ssh Host *.corp.example lab-*: StrictHostKeyChecking no @$T/home/.ssh/config:5",
			"critical ssh Host *: UserKnownHostsFile /dev/null @$T/home/.ssh/config:11",
			"warning ssh Match exec \"test -f /run/ci\": StrictHostKeyChecking no @$T/home/.ssh/config:9",
			"critical git GIT_SSH_COMMAND -o StrictHostKeyChecking ssh -i /run/key -o StrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null @environment",
			"critical git GIT_SSH_COMMAND -o UserKnownHostsFile ssh -i /run/key -o StrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null @environment",
			"warning git core.sshCommand -o StrictHostKeyChecking ssh -o 'StrictHostKeyChecking accept-new' @$T/home/.gitconfig:8",
		})
		// Which hosts each finding covers: the Host * block covers every
		// host judged; printer.lab.example is no build's host.
		for _, f := range r.Findings {
			if strings.HasPrefix(f.Setting, "Host *: ") && !strings.Contains(f.Why, "git.corp.example") {
				t.Errorf("Host * does not name the git remote's host: %s", f.Why)
			}
		}
		var ssh []string
		for _, h := range r.SSHHosts() {
			ssh = append(ssh, tr.rel(h.Key()+" "+h.Source))
		}
		if diff := cmp.Diff([]string{
			"git.corp.example:22 remote.origin.url ($T/home/.gitconfig:2)",
			"[2001:db8::22]:2222 remote.mirror.url ($T/home/.gitconfig:4)",
			"github.com:22 url.git@github.com:.insteadOf ($T/home/.gitconfig:6)",
		}, ssh); diff != "" {
			t.Errorf("SSH hosts (-want +got):\n%s", diff)
		}
		if slices.ContainsFunc(r.ToolchainHosts(), func(h toolchain.Host) bool { return h.Port == 22 }) {
			t.Errorf("an SSH host among the TLS ones: %v", r.ToolchainHosts())
		}
	})
}

func TestSSHHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"git@github.com:org/repo.git":          "github.com:22",
		"github.com:org/repo":                  "github.com:22",
		"ssh://git@github.com/org/repo":        "github.com:22",
		"ssh://git@ssh.github.com:443/org/r":   "ssh.github.com:443",
		"git+ssh://host.lab.example/r":         "host.lab.example:22",
		"git@[2001:db8::1]:r":                  "[2001:db8::1]:22",
		"https://github.com/org/repo":          "",
		"/srv/git/repo.git":                    "",
		"./a:b":                                "",
		"file:///srv/repo":                     "",
		"ssh://git@host.lab.example:99999/r":   "",
		"ssh://git@bad_host!.lab.example/repo": "",
	} {
		h, ok := sshHost(in, "s", "f")
		got := ""
		if ok {
			got = h.Toolchain().Key()
		}
		if got != want {
			t.Errorf("sshHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShellWords(t *testing.T) {
	t.Parallel()
	got := shellWords(`ssh -o "StrictHostKeyChecking no" -o'UserKnownHostsFile /dev/null' a\ b ''`)
	want := []string{"ssh", "-o", "StrictHostKeyChecking no", "-oUserKnownHostsFile /dev/null", "a b", ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("shellWords (-want +got):\n%s", diff)
	}
}

func TestWithSumDB(t *testing.T) {
	t.Parallel()
	r := Report{Findings: []Finding{
		{Tool: "go", Setting: "GOSUMDB", Value: "off", Fix: "Unset GOSUMDB."},
		{Tool: "go", Setting: "GOPROXY", Fix: "Use https."},
	}}
	tree := &detector.SumDBTree{Size: 300}
	r.WithSumDB(detector.Result{Verdict: detector.OK, Obs: detector.Observation{SumDB: &detector.SumDBState{Name: "sum.lab.example", Tree: tree, ViaProxy: true}}})
	if f := r.Findings[0].Fix; !strings.HasPrefix(f, "Unset GOSUMDB. This machine reaches") || !strings.Contains(f, "size 300, hash ") || !strings.Contains(f, ", through the module proxy)") {
		t.Errorf("GOSUMDB fix: %q", f)
	}
	if r.Findings[1].Fix != "Use https." {
		t.Errorf("GOPROXY fix changed: %q", r.Findings[1].Fix)
	}
	r.WithSumDB(detector.Result{Verdict: detector.Blocked, Obs: detector.Observation{SumDB: &detector.SumDBState{Name: "sum.lab.example"}}})
	if f := r.Findings[0].Fix; !strings.Contains(f, "blocked on this machine's path") || !strings.Contains(f, "rather than leaving the check off") {
		t.Errorf("blocked: %q", f)
	}
}

// FuzzSSHConfigLine: whatever an ssh_config line or an ssh command line
// holds, reading it neither panics nor yields a keyword with upper case.
func FuzzSSHConfigLine(f *testing.F) {
	for _, s := range []string{"StrictHostKeyChecking=no", "Host *.corp.example !lab-*", `Match exec "test -f /x" host a,b`,
		"  UserKnownHostsFile \"/dev/null\"", "Include ~/.ssh/conf.d/*", `ssh -o 'StrictHostKeyChecking no' -oUserKnownHostsFile=/dev/null "a\\"b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		key, value, ok := splitSSHLine(line)
		if ok && key != strings.ToLower(key) {
			t.Fatalf("keyword %q not lower-cased", key)
		}
		patterns, _ := matchHosts(value)
		matchHostPatterns(patterns, "github.com")
		matchHostPatterns(strings.Fields(value), "github.com")
		for _, o := range sshOptions(line) {
			k, v, _ := splitSSHLine(o)
			weakSSHValue(k, v)
		}
	})
}
