package packaging

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	version1 = "v1.0.0"
	version2 = "v1.0.1" // the same files: the local rules.yaml must stay, silently
	// version3 is version2 repacked with a changed default rules.yaml.
	version3 = "1.0.2-1"
	newLine  = "# a default added in 1.0.2"
	// localTarget is the admin's edit of rules.yaml, which every upgrade
	// must keep.
	localTarget = "  - host: git.corp.example\n"
)

// TestPackages builds the .deb and the .rpm with `make packages` and takes
// them through what a build agent's life does to them: install, upgrade
// with a locally edited rules.yaml (with the same default, then with a
// changed one), remove (config and state stay), purge (they go), in a fresh
// Debian root, with systemd played by a stub that records what the
// maintainer scripts ask of it.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the packages and a Debian root file system")
	}
	requireRoot(t)
	for _, tool := range []string{"make", "dpkg-deb", "rpm", "debootstrap", "chroot", "systemd-analyze", "systemctl", "man", "lexgrog", "bash", "zsh", "fish"} {
		requireTool(t, tool)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, repo)
	deb1, rpm1 := b.packages(version1)
	sums := digest(t, deb1) + digest(t, rpm1)
	deb2, rpm2 := b.packages(version2)
	deb3 := repack(t, deb2, version3, newLine)

	ok := t.Run("reproducible", func(t *testing.T) {
		deb, rpm := b.packages(version1)
		if digest(t, deb)+digest(t, rpm) != sums {
			t.Error("building the packages of the same commit and version again gave other bytes")
		}
	})
	ok = t.Run("deb file", func(t *testing.T) { checkDebFile(t, deb1) }) && ok
	ok = t.Run("rpm file", func(t *testing.T) { checkRPMFile(t, rpm1, "1.0.0") }) && ok
	if !ok {
		return
	}

	r := newRoot(t)
	l := &lifecycle{r: r, b: b, repo: repo}
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"install", func(t *testing.T) { l.install(t, deb1) }},
		{"commands", l.commands},
		{"unit", l.unit},
		{"docs", l.docs},
		{"upgrade", func(t *testing.T) { l.upgrade(t, deb2) }},
		{"upgrade with a new default", func(t *testing.T) { l.upgradeNewDefault(t, deb3) }},
		{"remove", l.remove},
		{"purge", l.purge},
		{"rpm", func(t *testing.T) { l.rpm(t, rpm1, rpm2) }},
	} {
		if !t.Run(step.name, step.run) {
			return // each step starts where the last one left the root
		}
	}
}

func checkDebFile(t *testing.T, deb string) {
	out, err := exec.Command("dpkg-deb", "-I", deb, "conffiles").CombinedOutput()
	if err != nil || string(out) != "/etc/mitmwatch/rules.yaml\n" {
		t.Errorf("conffiles: %q (%v), want only /etc/mitmwatch/rules.yaml", out, err)
	}
	for field, want := range map[string]string{"Package": "mitmwatch", "Version": "1.0.0-1", "Architecture": runtime.GOARCH, "Recommends": "procps", "Depends": ""} {
		out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("%s: %q (%v), want %q", field, got, err, want)
		}
	}
}

// checkRPMFile reads the .rpm with Debian's rpm: the files it lists, the
// config flag of rules.yaml, owners and modes, and the scriptlets.
func checkRPMFile(t *testing.T, rpm, version string) {
	query := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("rpm", append([]string{"-qp"}, append(args, rpm)...)...).Output()
		if err != nil {
			t.Fatalf("rpm -qp %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	var want []string
	for _, e := range contentsOf("rpm") {
		want = append(want, e.path)
	}
	slices.Sort(want)
	got := strings.Fields(query("-l"))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rpm -qlp (-want +got):\n%s", d)
	}
	if got, want := query("--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}"), "mitmwatch "+version+"-1 "+rpmArch(); got != want {
		t.Errorf("rpm: %q, want %q", got, want)
	}
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(query("--qf", `[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]`)), "\n") {
		f := strings.Fields(line)
		flags := ""
		if len(f) > 3 {
			flags = f[3]
		}
		files[f[0]] = strings.TrimSpace(f[1] + " " + f[2] + " " + flags)
	}
	for _, e := range contentsOf("rpm") {
		want := e.mode.String() + " root:root "
		if e.path == "/etc/mitmwatch/rules.yaml" {
			want += "cn" // %config(noreplace)
		}
		if files[e.path] != strings.TrimSpace(want) {
			t.Errorf("%s: %q, want %q", e.path, files[e.path], strings.TrimSpace(want))
		}
	}
	scripts := query("--scripts")
	for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("rpm --scripts lacks a %s:\n%s", s, scripts)
		}
	}
}

// lifecycle is the state the steps hand on: the root and what the first
// steps learned.
type lifecycle struct {
	r       *root
	b       *builder
	repo    string
	targets int // in the shipped rules.yaml
	edited  []byte
}

func (l *lifecycle) copyIn(t *testing.T, pkg string) string {
	t.Helper()
	b, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	in := "/tmp/" + filepath.Base(pkg)
	write(t, l.r.path(in), string(b), 0o644)
	return in
}

func (l *lifecycle) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if d := cmp.Diff(want, l.r.systemctl(t)); d != "" {
		t.Errorf("the maintainer scripts' systemctl calls (-want +got):\n%s", d)
	}
}

func (l *lifecycle) status(t *testing.T) string {
	t.Helper()
	out, _ := l.r.run("dpkg-query", "-W", "-f=${Version} ${Status}", "mitmwatch")
	return out
}

func (l *lifecycle) install(t *testing.T, deb string) {
	l.r.systemdRunning(t, true)
	l.r.must(t, "dpkg", "-i", l.copyIn(t, deb))
	l.wantCalls(t, "daemon-reload") // nothing enabled, nothing started
	if got := l.status(t); got != "1.0.0-1 install ok installed" {
		t.Errorf("dpkg-query: %q", got)
	}
	checkInstalled(t, l.r, l.repo, "deb")
	checkBinary(t, l.r.path("/usr/bin/mitmwatch"))
	checkBinary(t, l.r.path("/usr/bin/mitmwatch-agent"))

	// Nothing but the listed files.
	var want, got []string
	for _, e := range contentsOf("deb") {
		if e.mode.IsRegular() {
			want = append(want, e.path)
		}
	}
	for _, p := range strings.Fields(l.r.must(t, "dpkg", "-L", "mitmwatch")) {
		if fi, err := os.Lstat(l.r.path(p)); err == nil && fi.Mode().IsRegular() {
			got = append(got, p)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files of the installed package (-want +got):\n%s", d)
	}
}

// checkInstalled checks each path's type, mode and owner, and that the
// files copied from the repository are unchanged.
func checkInstalled(t *testing.T, r *root, repo, packager string) {
	t.Helper()
	for _, e := range contentsOf(packager) {
		fi, err := os.Lstat(r.path(e.path))
		if err != nil {
			t.Errorf("%s: %v", e.path, err)
			continue
		}
		if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != e.mode {
			t.Errorf("%s: mode %v, want %v", e.path, got, e.mode)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: not owned by root:root", e.path)
		}
		if e.src == "" {
			continue
		}
		got, err1 := os.ReadFile(r.path(e.path))
		want, err2 := os.ReadFile(filepath.Join(repo, e.src))
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (%v, %v)", e.path, e.src, err1, err2)
		}
	}
}

var validated = regexp.MustCompile(`^/etc/mitmwatch/rules\.yaml: ok \((\d+) targets\)\n$`)

// validate runs `mitmwatch validate` on the installed config and returns
// its number of targets.
func (l *lifecycle) validate(t *testing.T, args ...string) int {
	t.Helper()
	out := l.r.must(t, append([]string{"mitmwatch", "validate"}, args...)...)
	m := validated.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("mitmwatch validate %v: %q", args, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (l *lifecycle) wantVersion(t *testing.T, version string) {
	t.Helper()
	out := l.r.must(t, "mitmwatch", "version")
	if first, _, _ := strings.Cut(out, "\n"); first != "mitmwatch "+version {
		t.Errorf("mitmwatch version: %q, want the first line %q", out, "mitmwatch "+version)
	}
	// Until main prints currentBuild (cmd/mitmwatch/version.go), the linker
	// drops the unused revision and date: only the version shows.
	if !strings.Contains(out, "revision:") {
		t.Logf("mitmwatch version prints no revision or build date yet: %q", out)
		return
	}
	for _, want := range []string{"revision:   " + l.b.revision + "\n", "build date: " + l.b.buildDate() + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("mitmwatch version: %q, want %q", out, want)
		}
	}
}

func (l *lifecycle) commands(t *testing.T) {
	l.wantVersion(t, version1)
	// The default location is the installed config; --config names it.
	l.targets = l.validate(t)
	if n := l.validate(t, "--config", "/etc/mitmwatch/rules.yaml"); n != l.targets {
		t.Errorf("validate --config: %d targets, without: %d", n, l.targets)
	}
}

// unit verifies the installed unit, alone and with the capture drop-in
// installed as its instructions say, then enables it as an admin would.
func (l *lifecycle) unit(t *testing.T) {
	dropIn := l.r.path("/etc/systemd/system/mitmwatch.service.d/capture.conf")
	for _, capture := range []bool{false, true} {
		if capture {
			b, err := os.ReadFile(l.r.path("/usr/share/mitmwatch/capture.conf"))
			if err != nil {
				t.Fatal(err)
			}
			write(t, dropIn, string(b), 0o644)
		}
		out, err := exec.Command("systemd-analyze", "verify", "--root="+l.r.dir, "--man=no", "mitmwatch.service").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("systemd-analyze verify (capture drop-in: %v): %v\n%s", capture, err, out)
		}
	}
	if err := os.RemoveAll(filepath.Dir(dropIn)); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemctl", "--root="+l.r.dir, "enable", "mitmwatch.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable: %v\n%s", err, out)
	}
	if _, err := os.Lstat(l.r.path("/etc/systemd/system/multi-user.target.wants/mitmwatch.service")); err != nil {
		t.Errorf("enabling made no link: %v", err)
	}
}

func (l *lifecycle) upgrade(t *testing.T, deb string) {
	rules := l.r.path("/etc/mitmwatch/rules.yaml")
	b, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(b, []byte("\ntargets:\n"), []byte("\ntargets:\n"+localTarget), 1)
	if bytes.Equal(edited, b) {
		t.Fatal("rules.yaml has no top-level targets: list to add a target to")
	}
	write(t, rules, string(edited), 0o644)
	l.edited = edited
	if n := l.validate(t); n != l.targets+1 {
		t.Fatalf("edited rules.yaml: %d targets, want %d", n, l.targets+1)
	}

	l.r.must(t, "dpkg", "-i", l.copyIn(t, deb))
	l.wantCalls(t, "daemon-reload") // no stop, no restart
	if got := l.status(t); got != "1.0.1-1 install ok installed" {
		t.Errorf("dpkg-query: %q", got)
	}
	l.wantVersion(t, version2)
	l.wantEdited(t, rules)
	if n := l.validate(t); n != l.targets+1 {
		t.Errorf("after the upgrade: %d targets, want %d", n, l.targets+1)
	}
	if m, _ := filepath.Glob(rules + ".*"); len(m) > 0 {
		t.Errorf("the default did not change, yet dpkg left %v", m)
	}
}

func (l *lifecycle) wantEdited(t *testing.T, path string) {
	t.Helper()
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, l.edited) {
		t.Errorf("%s lost the local edit (%v):\n%s", path, err, got)
	}
}

// upgradeNewDefault: the package's rules.yaml changed too. Unattended, as
// configuration management runs dpkg (apt-get -o
// Dpkg::Options::=--force-confold), the admin's file stays and the new
// default lands beside it. Without systemd running, the scripts call
// nothing.
func (l *lifecycle) upgradeNewDefault(t *testing.T, deb string) {
	l.r.systemdRunning(t, false)
	defer l.r.systemdRunning(t, true)
	l.r.must(t, "dpkg", "--force-confdef", "--force-confold", "-i", l.copyIn(t, deb))
	l.wantCalls(t)
	if got := l.status(t); got != version3+" install ok installed" {
		t.Errorf("dpkg-query: %q", got)
	}
	rules := l.r.path("/etc/mitmwatch/rules.yaml")
	l.wantEdited(t, rules)
	if b, err := os.ReadFile(rules + ".dpkg-dist"); err != nil || !bytes.Contains(b, []byte(newLine)) {
		t.Errorf("rules.yaml.dpkg-dist should hold the new default: %v\n%s", err, b)
	}
}

// remove keeps the configuration and the state a service left: with
// DynamicUser=yes, /var/lib/mitmwatch links to /var/lib/private/mitmwatch.
func (l *lifecycle) remove(t *testing.T) {
	write(t, l.r.path("/var/lib/private/mitmwatch/results.json"), "{}\n", 0o600)
	if err := os.Symlink("private/mitmwatch", l.r.path("/var/lib/mitmwatch")); err != nil {
		t.Fatal(err)
	}
	l.r.must(t, "dpkg", "-r", "mitmwatch")
	l.wantCalls(t, "stop mitmwatch.service", "daemon-reload")
	if got := l.status(t); got != version3+" deinstall ok config-files" {
		t.Errorf("dpkg-query: %q", got)
	}
	for _, e := range contentsOf("deb") {
		if e.mode.IsRegular() && e.path != "/etc/mitmwatch/rules.yaml" {
			if _, err := os.Lstat(l.r.path(e.path)); err == nil {
				t.Errorf("%s is still there", e.path)
			}
		}
	}
	l.wantEdited(t, l.r.path("/etc/mitmwatch/rules.yaml"))
	for _, p := range []string{"/var/lib/mitmwatch/results.json", "/etc/systemd/system/multi-user.target.wants/mitmwatch.service"} {
		if _, err := os.Lstat(l.r.path(p)); err != nil {
			t.Errorf("removal took %s: %v", p, err)
		}
	}
	// systemd-analyze verify really looks in the root: the unit is gone.
	if out, err := exec.Command("systemd-analyze", "verify", "--root="+l.r.dir, "--man=no", "mitmwatch.service").CombinedOutput(); err == nil {
		t.Errorf("systemd-analyze verify passed without the unit:\n%s", out)
	}
}

func (l *lifecycle) purge(t *testing.T) {
	l.r.must(t, "dpkg", "-P", "mitmwatch")
	l.wantCalls(t, "daemon-reload")
	if out, err := l.r.run("dpkg-query", "-W", "mitmwatch"); err == nil {
		t.Errorf("dpkg still knows mitmwatch: %s", out)
	}
	for _, p := range []string{"/etc/mitmwatch", "/var/lib/mitmwatch", "/var/lib/private/mitmwatch", "/etc/systemd/system/multi-user.target.wants/mitmwatch.service"} {
		if _, err := os.Lstat(l.r.path(p)); err == nil {
			t.Errorf("purge left %s", p)
		}
	}
}

// rpm installs, upgrades and erases the .rpm in the same root with its own
// database: %config(noreplace) keeps the edit through an upgrade, erasing
// saves it as rules.yaml.rpmsave, and the scriptlets read rpm's counts.
func (l *lifecycle) rpm(t *testing.T, rpm1, rpm2 string) {
	rpm := func(args ...string) {
		t.Helper()
		cmd := exec.Command("rpm", append([]string{"--root=" + l.r.dir}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	rpm("--initdb")
	rpm("-i", "--nodeps", rpm1)
	l.wantCalls(t, "daemon-reload")
	checkInstalled(t, l.r, l.repo, "rpm")

	rules := l.r.path("/etc/mitmwatch/rules.yaml")
	write(t, rules, string(l.edited), 0o644)
	rpm("-U", "--nodeps", rpm2)
	l.wantCalls(t, "daemon-reload")
	l.wantVersion(t, version2)
	l.wantEdited(t, rules)
	if m, _ := filepath.Glob(rules + ".*"); len(m) > 0 {
		t.Errorf("the default did not change, yet rpm left %v", m)
	}

	rpm("-e", "mitmwatch")
	l.wantCalls(t, "stop mitmwatch.service", "daemon-reload")
	for _, bin := range []string{"/usr/bin/mitmwatch", "/usr/bin/mitmwatch-agent"} {
		if _, err := os.Lstat(l.r.path(bin)); err == nil {
			t.Errorf("%s is still there", bin)
		}
	}
	l.wantEdited(t, rules+".rpmsave")
}
