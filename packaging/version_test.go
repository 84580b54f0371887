package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVersionScript runs packaging/version.sh in a scratch repository
// through the life of a project: before any tag, at a tag, after it, after
// a pre-release, and with a changed file.
func TestVersionScript(t *testing.T) {
	requireTool(t, "git")
	script, err := filepath.Abs("version.sh")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	date := time.Date(2025, 11, 28, 15, 13, 0, 0, time.UTC)
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE="+date.Format(time.RFC3339), "GIT_COMMITTER_DATE="+date.Format(time.RFC3339),
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func() string {
		t.Helper()
		date = date.Add(time.Hour)
		write(t, filepath.Join(repo, "f"), date.String(), 0o644)
		git("add", "f")
		git("commit", "-q", "-m", "c")
		return git("rev-parse", "--short=12", "HEAD")
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command("sh", script)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("version.sh: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")

	rev := commit()
	want := func(v string) {
		t.Helper()
		if got := version(); got != v {
			t.Errorf("version.sh: %q, want %q", got, v)
		}
	}
	want("v0.0.0-20251128161300-" + rev)
	git("tag", "v1.2.0")
	want("v1.2.0")
	rev = commit()
	want("v1.2.1-0.20251128171300-" + rev)
	git("tag", "v1.3.0-rc.1")
	rev = commit()
	want("v1.3.0-rc.1.0.20251128181300-" + rev)
	write(t, filepath.Join(repo, "f"), "changed", 0o644)
	want("v1.3.0-rc.1.0.20251128181300-" + rev + "+dirty")
	write(t, filepath.Join(repo, "untracked"), "", 0o644)
	git("checkout", "-q", "f")
	want("v1.3.0-rc.1.0.20251128181300-" + rev) // untracked files do not count
}

// TestMakeStamp: in a checkout, the Makefile stamps the commit, its time
// and version.sh's version.
func TestMakeStamp(t *testing.T) {
	requireTool(t, "make")
	requireTool(t, "git")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).Output()
		if err != nil {
			t.Skipf("not a Git checkout: git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	rev, ct := git("rev-parse", "HEAD"), git("log", "-1", "--format=%ct", "HEAD")
	cmd := exec.Command("make", "-s", "-C", repo, "version")
	cmd.Env = withoutVars(os.Environ(), "VERSION", "REVISION", "SOURCE_DATE_EPOCH", "MAKEFLAGS")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make version: %v", err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vars[k] = strings.Trim(v, "'")
	}
	if rev2 := git("rev-parse", "HEAD"); rev2 != rev {
		t.Skip("HEAD moved while the test ran")
	}
	epoch, _ := strconv.ParseInt(ct, 10, 64)
	date := time.Unix(epoch, 0).UTC().Format("2006-01-02T15:04:05Z")
	for k, want := range map[string]string{"REVISION": rev, "SOURCE_DATE_EPOCH": ct, "BUILD_DATE": date} {
		if vars[k] != want {
			t.Errorf("make version: %s=%q, want %q", k, vars[k], want)
		}
	}
	semver := regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+dirty)?$`)
	if v := vars["VERSION"]; !semver.MatchString(v) {
		t.Errorf("make version: VERSION=%q is no Go version", v)
	} else if !strings.Contains(v, rev[:12]) && git("tag", "--points-at", "HEAD") == "" {
		t.Errorf("make version: VERSION=%q names no tag and not the commit %s", v, rev[:12])
	}
}
