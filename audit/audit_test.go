package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tree is a temporary machine: a home directory, a project inside it and
// a root under which the system paths (/etc/...) live.
type tree struct {
	t    testing.TB
	base string
	root string
	home string
	proj string
	env  map[string]string
	run  func(ctx context.Context, name string, args ...string) ([]byte, error) // nil: the real binaries
}

func newTree(t testing.TB) *tree {
	t.Helper()
	base := t.TempDir()
	tr := &tree{t: t, base: base, root: filepath.Join(base, "root"), home: filepath.Join(base, "home")}
	tr.proj = filepath.Join(tr.home, "src", "app")
	tr.env = map[string]string{"HOME": tr.home}
	for _, d := range []string{tr.root, tr.proj} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The go command's telemetry is off only through this file (no
	// environment variable does); otherwise a child it leaves behind
	// writes counters into the tree after it was removed.
	tr.write(filepath.Join(tr.home, ".config", "go", "telemetry", "mode"), "off\n")
	// Pin the project's npm prefix inside the tree.
	tr.write(filepath.Join(tr.proj, "package.json"), "{}\n")
	return tr
}

// write creates a file (and its directories) and returns its path.
func (tr *tree) write(path, content string) string {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	return path
}

// without makes the runner report both binaries as not installed, to test
// the fallbacks that read the files directly.
func (tr *tree) without() *tree {
	tr.run = func(_ context.Context, name string, _ ...string) ([]byte, error) {
		return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	return tr
}

func (tr *tree) options(allUsers bool) Options {
	return Options{
		Getenv:   func(k string) string { return tr.env[k] },
		Dir:      tr.proj,
		Root:     tr.root,
		AllUsers: allUsers,
		Run:      tr.run,
	}
}

func (tr *tree) audit(allUsers bool) Report {
	tr.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Run(ctx, tr.options(allUsers))
}

// rel hides the tree's temporary directory in s.
func (tr *tree) rel(s string) string { return strings.ReplaceAll(s, tr.base, "$T") }

// summary renders findings as "severity tool setting value @source",
// sorted, for cmp.Diff.
func (tr *tree) summary(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, tr.rel(fmt.Sprintf("%s %s %s %s @%s", f.Severity, f.Tool, f.Setting, f.Value, f.Source)))
	}
	slices.Sort(out)
	return out
}

func (tr *tree) hosts(hs []Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, tr.rel(fmt.Sprintf("%s://%s:%d %s", h.Scheme, h.Host, h.Port, h.Source)))
	}
	return out
}

// only keeps the findings of one tool.
func only(fs []Finding, tools ...string) []Finding {
	var out []Finding
	for _, f := range fs {
		if slices.Contains(tools, f.Tool) {
			out = append(out, f)
		}
	}
	return out
}

func needBinary(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
}

// TestCleanHome: a home with no configuration, and tools installed, yields
// no finding and no warning.
func TestCleanHome(t *testing.T) {
	t.Parallel()
	for _, withBinaries := range []bool{true, false} {
		t.Run(fmt.Sprintf("binaries=%v", withBinaries), func(t *testing.T) {
			t.Parallel()
			tr := newTree(t)
			if withBinaries {
				needBinary(t, "go")
				needBinary(t, "git")
			} else {
				tr.without()
			}
			r := tr.audit(true)
			if len(r.Findings) != 0 || len(r.Warnings) != 0 {
				t.Errorf("findings %v, warnings %v; want none", tr.summary(r.Findings), r.Warnings)
			}
			if r.Critical() {
				t.Error("Critical() = true")
			}
		})
	}
}

// TestMalformed: files that cannot be read or parsed give a warning naming
// them, and the audit goes on to report everything else.
func TestMalformed(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	// Directories where files belong (unreadable even by root).
	must(t, os.MkdirAll(filepath.Join(tr.home, ".npmrc"), 0o755))
	// A symlink loop.
	loop := filepath.Join(tr.home, ".config", "pip", "pip.conf")
	must(t, os.MkdirAll(filepath.Dir(loop), 0o755))
	must(t, os.Symlink(loop, loop))
	// A dangling symlink.
	must(t, os.Symlink(filepath.Join(tr.base, "nowhere"), filepath.Join(tr.home, ".yarnrc")))
	// Broken TOML, JSON, YAML, INI and git config.
	tr.write(filepath.Join(tr.home, ".cargo", "config.toml"), "[http]\ncheck-revoke = fals\n")
	tr.write(filepath.Join(tr.root, "etc", "docker", "daemon.json"), "{\n  \"insecure-registries\": [\"a.lab.example\",\n}\n")
	tr.write(filepath.Join(tr.home, ".yarnrc.yml"), "enableStrictSsl: [\n")
	tr.write(filepath.Join(tr.root, "etc", "pip.conf"), "index-url = https://pypi.lab.example/simple\n")
	tr.write(filepath.Join(tr.home, ".gitconfig"), "[http]\n\tsslVerify = false\n[broken\n")
	// GOENV naming a directory.
	tr.env["GOENV"] = filepath.Join(tr.base, "goenvdir")
	must(t, os.MkdirAll(tr.env["GOENV"], 0o755))
	// One good finding that must survive all of that.
	tr.env["NODE_TLS_REJECT_UNAUTHORIZED"] = "0"

	for _, tc := range []struct {
		name string
		tr   *tree
	}{{"binaries", tr}, {"files", &tree{t: t, base: tr.base, root: tr.root, home: tr.home, proj: tr.proj, env: tr.env}}} {
		if tc.name == "files" {
			tc.tr.without()
		} else if _, err := exec.LookPath("git"); err != nil {
			continue
		}
		r := tc.tr.audit(true)
		want := []string{
			"$T/home/.npmrc: is a directory, not a file",
			"$T/home/.config/pip/pip.conf: too many levels of symbolic links",
			"$T/home/.yarnrc: dangling symbolic link",
			"$T/home/.cargo/config.toml: line 2 column 16:",
			"$T/root/etc/docker/daemon.json: line 3:",
			"$T/home/.yarnrc.yml: yaml:",
			"$T/root/etc/pip.conf: line 1: key before any [section]",
			"$T/home/.gitconfig: line 3: bad config line",
			"$T/goenvdir: is a directory, not a file",
		}
		if tc.name == "binaries" {
			want = append(want, "git config: exit status")
		}
		var got []string
		for _, w := range r.Warnings {
			got = append(got, tr.rel(w))
		}
		for _, w := range want {
			if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
				t.Errorf("%s: no warning starting %q in:\n%s", tc.name, w, strings.Join(got, "\n"))
			}
		}
		// What could be read is still judged: git's sslVerify before the
		// broken line, Node's variable.
		sum := tr.summary(r.Findings)
		for _, w := range []string{
			"critical git http.sslVerify false @$T/home/.gitconfig:2",
			"critical npm NODE_TLS_REJECT_UNAUTHORIZED 0 @environment",
		} {
			if !slices.Contains(sum, w) {
				t.Errorf("%s: missing %q in %q", tc.name, w, sum)
			}
		}
	}
}

// TestRedaction: passwords and tokens never reach the report, whichever
// tool they were configured for.
func TestRedaction(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	const secret = "s3cr3t-Pa55"
	tr.env["HTTPS_PROXY"] = "http://alice:" + secret + "@proxy.lab.example:3128"
	tr.env["http_proxy"] = "alice:" + secret + "@proxy.lab.example:3128"
	tr.env["GOPROXY"] = "http://bob:" + secret + "@goproxy.lab.example/,direct"
	tr.env["GOINSECURE"] = "git.lab.example"
	tr.write(filepath.Join(tr.home, ".npmrc"), strings.Join([]string{
		"registry=http://npm.lab.example/",
		"//npm.lab.example/:_authToken=" + secret,
		"_auth=" + secret,
		"https-proxy=http://carol:" + secret + "@proxy.lab.example:3128",
	}, "\n"))
	tr.write(filepath.Join(tr.home, ".gitconfig"), "[http]\n\tproxy = http://dave:"+secret+"@proxy.lab.example:3128\n"+
		"[url \"http://erin:"+secret+"@git.lab.example/\"]\n\tinsteadOf = https://git.lab.example/\n"+
		"[http \"https://frank:"+secret+"@git.lab.example/\"]\n\tsslVerify = false\n")
	tr.write(filepath.Join(tr.home, ".config", "pip", "pip.conf"), "[global]\nindex-url = http://gina:"+secret+"@pypi.lab.example/simple\nproxy = hank:"+secret+"@proxy.lab.example:3128\n")
	tr.write(filepath.Join(tr.home, ".cargo", "config.toml"), "[http]\nproxy = \"ivan:"+secret+"@proxy.lab.example:3128\"\n")
	tr.write(filepath.Join(tr.home, ".docker", "config.json"), `{"auths": {"registry.lab.example": {"auth": "`+secret+`"}}, "proxies": {"default": {"httpsProxy": "http://judy:`+secret+`@proxy.lab.example:3128"}}}`)

	r := tr.audit(false)
	data, err := json.Marshal(r)
	must(t, err)
	if strings.Contains(string(data), secret) {
		t.Errorf("the secret leaked into the report:\n%s", data)
	}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy"} {
		if strings.Contains(string(data), name) {
			t.Errorf("user name %s (often a token) leaked into the report", name)
		}
	}
	// The proxies with credentials are warnings, and say REDACTED.
	var proxies int
	for _, f := range r.Findings {
		if f.Tool != "go" && strings.Contains(strings.ToLower(f.Setting), "proxy") {
			proxies++
			if f.Severity.String() != "warning" || !strings.Contains(f.Value, redacted) {
				t.Errorf("%s %s: severity %s value %q; want a warning with %s", f.Tool, f.Setting, f.Severity, f.Value, redacted)
			}
		}
	}
	if proxies != 7 {
		t.Errorf("%d proxy findings, want 7: %q", proxies, tr.summary(r.Findings))
	}
}

// TestBoundedCommands: a wedged go or git is cut off by the caller's
// context and the audit falls back to the files.
func TestBoundedCommands(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	tr.run = func(ctx context.Context, _ string, _ ...string) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	tr.env["GOSUMDB"] = "off"
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := Run(ctx, tr.options(false))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v", d)
	}
	if len(r.Warnings) != 2 || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("warnings %q; want one for go and one for git", r.Warnings)
	}
	if diff := cmp.Diff([]string{"critical go GOSUMDB off @environment"}, tr.summary(r.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAudit audits a home configured for every tool, with the real go
// and git binaries where installed and the machine's own trust store.
func BenchmarkAudit(b *testing.B) {
	tr := newTree(b)
	populate(tr)
	opts := tr.options(true)
	opts.Root = "" // the real system store: the costly part of the trust check
	opts.AllUsers = false
	ctx := context.Background()
	for b.Loop() {
		Run(ctx, opts)
	}
}

// populate writes a configuration for every tool into tr.
func populate(tr *tree) {
	tr.env["GOINSECURE"] = "git.lab.example"
	tr.env["GOPROXY"] = "https://goproxy.lab.example,direct"
	tr.write(filepath.Join(tr.home, ".gitconfig"), "[url \"http://git.lab.example/\"]\n\tinsteadOf = https://git.lab.example/\n[http]\n\tsslVerify = false\n")
	tr.write(filepath.Join(tr.home, ".npmrc"), "strict-ssl=false\nregistry=https://npm.lab.example/\n")
	tr.write(filepath.Join(tr.home, ".config", "pip", "pip.conf"), "[global]\ntrusted-host = pypi.lab.example\nindex-url = https://pypi.lab.example/simple\n")
	tr.write(filepath.Join(tr.home, ".cargo", "config.toml"), "[http]\ncheck-revoke = false\n[registries.corp]\nindex = \"sparse+https://crates.lab.example/\"\n")
	tr.write(filepath.Join(tr.root, "etc", "docker", "daemon.json"), `{"insecure-registries": ["registry.lab.example:5000"]}`)
}
