package packaging

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxBinarySize bounds the static Linux binary.
const maxBinarySize = 25_000_000

// entry is one path the packages install.
type entry struct {
	path string
	mode fs.FileMode // type and permission bits
	src  string      // the repository file it must equal, if any
	only string      // "deb" or "rpm" when only that package has it
}

const dirMode = fs.ModeDir | 0o755

var contents = []entry{
	{"/usr/bin/mitmwatch", 0o755, "", ""},
	{"/usr/bin/mitmwatch-agent", 0o755, "", ""},
	{"/etc/mitmwatch", dirMode, "", ""},
	{"/etc/mitmwatch/rules.yaml", 0o644, "rules.yaml", ""},
	{"/usr/lib/systemd/system/mitmwatch.service", 0o644, "systemd/mitmwatch.service", ""},
	{"/usr/share/mitmwatch", dirMode, "", ""},
	{"/usr/share/mitmwatch/capture.conf", 0o644, "systemd/capture.conf", ""},
	{"/usr/share/mitmwatch/prometheus", dirMode, "", ""},
	{"/usr/share/mitmwatch/prometheus/mitmwatch-alerts.yml", 0o644, "deploy/prometheus/mitmwatch-alerts.yml", ""},
	{"/usr/share/mitmwatch/grafana", dirMode, "", ""},
	{"/usr/share/mitmwatch/grafana/mitmwatch-dashboard.json", 0o644, "deploy/grafana/mitmwatch-dashboard.json", ""},
	{"/usr/share/doc/mitmwatch", dirMode, "", ""},
	{"/usr/share/doc/mitmwatch/README.md", 0o644, "README.md", ""},
	{"/usr/share/doc/mitmwatch/deploy.md", 0o644, "deploy/README.md", ""},
	{"/usr/share/man/man1/mitmwatch.1.gz", 0o644, "", ""},
	{"/usr/share/bash-completion/completions/mitmwatch", 0o644, "", ""},
	{"/usr/share/zsh/vendor-completions/_mitmwatch", 0o644, "", "deb"},
	{"/usr/share/zsh/site-functions/_mitmwatch", 0o644, "", "rpm"},
	{"/usr/share/fish/vendor_completions.d/mitmwatch.fish", 0o644, "packaging/completions/mitmwatch.fish", ""},
}

// contentsOf lists what the deb or the rpm installs.
func contentsOf(packager string) []entry {
	var out []entry
	for _, e := range contents {
		if e.only == "" || e.only == packager {
			out = append(out, e)
		}
	}
	return out
}

// builder runs `make packages` for this machine's architecture into one
// dist directory, as a release would.
type builder struct {
	t        *testing.T
	repo     string
	dist     string
	revision string // what the binaries must be stamped with
	epoch    int64  // SOURCE_DATE_EPOCH
	stamp    []string
}

// newBuilder takes the revision and date from Git, as the Makefile does;
// outside a checkout it makes them up.
func newBuilder(t *testing.T, repo string) *builder {
	b := &builder{t: t, repo: repo, dist: t.TempDir()}
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	rev, err1 := git("rev-parse", "HEAD")
	ct, err2 := git("log", "-1", "--format=%ct", "HEAD")
	epoch, err3 := strconv.ParseInt(ct, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		rev, epoch = "0123456789abcdef0123456789abcdef01234567", 1764342780
		t.Logf("not a Git checkout: building revision %s of %d", rev, epoch)
	}
	// Handed to make even from Git, so that every build of the test is of
	// one revision while others commit (TestMakeStamp checks the defaults).
	b.revision, b.epoch = rev, epoch
	b.stamp = []string{"REVISION=" + rev, "SOURCE_DATE_EPOCH=" + strconv.FormatInt(epoch, 10)}
	return b
}

// packages builds the .deb and the .rpm of version (vX.Y.Z) and returns
// their paths.
func (b *builder) packages(version string) (deb, rpm string) {
	b.t.Helper()
	args := append([]string{"-C", b.repo, "packages", "DIST=" + b.dist, "PKG_ARCHS=" + runtime.GOARCH, "VERSION=" + version}, b.stamp...)
	cmd := exec.Command("make", args...)
	cmd.Env = withoutVars(os.Environ(), "REVISION", "SOURCE_DATE_EPOCH", "VERSION", "DIST", "PKG_ARCHS")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	b.t.Logf("make packages VERSION=%s: %s", version, time.Since(start).Round(100*time.Millisecond))
	v := strings.TrimPrefix(version, "v")
	deb = filepath.Join(b.dist, fmt.Sprintf("mitmwatch_%s-1_%s.deb", v, runtime.GOARCH))
	rpm = filepath.Join(b.dist, fmt.Sprintf("mitmwatch-%s-1.%s.rpm", v, rpmArch()))
	for _, p := range []string{deb, rpm} {
		if _, err := os.Stat(p); err != nil {
			b.t.Fatalf("make packages made no %s: %v", filepath.Base(p), err)
		}
	}
	return deb, rpm
}

// buildDate is the date the binaries must carry: the commit's.
func (b *builder) buildDate() string {
	return time.Unix(b.epoch, 0).UTC().Format("2006-01-02T15:04:05Z")
}

func rpmArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func withoutVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func digest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkBinary checks what `make release` promises of a Linux binary:
// static, small enough, built with CGO_ENABLED=0 and -trimpath (which
// keeps -ldflags out of the recorded settings: `mitmwatch version` shows
// the stamp), and without the demo lab's MITM proxy library.
func checkBinary(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes (%.1f MiB)", path, fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() >= maxBinarySize {
		t.Errorf("%s: %d bytes, want under %d", path, fi.Size(), maxBinarySize)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: not static", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v: not static", path, libs)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("%s: build setting %s=%q, want %q", path, k, settings[k], want)
		}
	}
	// The demo lab's MITM proxy library ships only in mitmwatch-demo; the
	// service's and capture's libraries only in mitmwatch-agent.
	agentOnly := []string{"github.com/prometheus/client_golang", "github.com/gopacket/gopacket", "google.golang.org/protobuf"}
	for _, m := range bi.Deps {
		if m.Path == "github.com/elazarl/goproxy" || filepath.Base(path) == "mitmwatch" && contains(agentOnly, m.Path) {
			t.Errorf("%s links %s %s", path, m.Path, m.Version)
		}
	}
}

// repack makes the package a later release would be whose default
// rules.yaml changed: the .deb of deb with version and one more line in
// /etc/mitmwatch/rules.yaml.
func repack(t *testing.T, deb, version, line string) string {
	t.Helper()
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	dpkgDeb := func(args ...string) {
		if out, err := exec.Command("dpkg-deb", args...).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dpkgDeb("-R", deb, tree)
	rules := filepath.Join(tree, "etc/mitmwatch/rules.yaml")
	old, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	changed := append(append([]byte{}, old...), line+"\n"...)
	write(t, rules, string(changed), 0o644)
	control := filepath.Join(tree, "DEBIAN/control")
	c, err := os.ReadFile(control)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(c), "\n") {
		if strings.HasPrefix(l, "Version: ") {
			l = "Version: " + version
		}
		lines = append(lines, l)
	}
	write(t, control, strings.Join(lines, "\n"), 0o644)
	md5sums := filepath.Join(tree, "DEBIAN/md5sums")
	m, err := os.ReadFile(md5sums)
	if err != nil {
		t.Fatal(err)
	}
	oldSum, newSum := md5.Sum(old), md5.Sum(changed)
	m = bytes.Replace(m, []byte(hex.EncodeToString(oldSum[:])), []byte(hex.EncodeToString(newSum[:])), 1)
	write(t, md5sums, string(m), 0o644)
	out := filepath.Join(work, "mitmwatch_"+version+"_"+runtime.GOARCH+".deb")
	dpkgDeb("--root-owner-group", "-b", tree, out)
	return out
}
