package packaging

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debianSuite is what the fresh root runs; MITMWATCH_DEBIAN_SUITE and
// MITMWATCH_DEBIAN_MIRROR override the suite and debootstrap's default
// mirror.
const debianSuite = "bookworm"

// chrootPath is the PATH maintainer scripts run with in the root:
// /usr/sbin comes before /usr/bin, so the systemctl stub below shadows the
// real one (rpm runs scriptlets with /sbin:/bin:/usr/sbin:/usr/bin; /sbin
// is /usr/sbin in a merged-/usr root).
const chrootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// root is a fresh Debian root file system, made with debootstrap: what a
// build agent has before mitmwatch, with systemd (so the unit verifies
// against the real targets) and procps (/bin/kill for ExecReload).
type root struct{ dir string }

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" {
		t.Fatal("must run as root (MITMWATCH_REQUIRE_TOOLS=1): debootstrap, chroot and dpkg work on a fresh root file system")
	}
	t.Skip("not root: debootstrap, chroot and dpkg need it; set MITMWATCH_REQUIRE_TOOLS=1 to fail instead of skipping")
}

// requireTool returns the path of an external tool. Without it the test is
// skipped, unless MITMWATCH_REQUIRE_TOOLS=1 (set by CI) makes that a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (MITMWATCH_REQUIRE_TOOLS=1): %v", name, err)
		}
		t.Skipf("%s not found; set MITMWATCH_REQUIRE_TOOLS=1 to fail instead of skipping", name)
	}
	return path
}

func newRoot(t *testing.T) *root {
	t.Helper()
	parent, err := os.MkdirTemp("", "mitmwatch-root-")
	if err != nil {
		t.Fatal(err)
	}
	r := &root{dir: filepath.Join(parent, "root")}
	t.Cleanup(func() { removeRoot(t, parent) })

	suite := envOr("MITMWATCH_DEBIAN_SUITE", debianSuite)
	args := []string{"--variant=minbase", "--include=systemd,procps", suite, r.dir}
	if mirror := os.Getenv("MITMWATCH_DEBIAN_MIRROR"); mirror != "" {
		args = append(args, mirror)
	}
	start := time.Now()
	if out, err := exec.Command("debootstrap", args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(r.dir, "debootstrap", "debootstrap.log"))
		t.Fatalf("debootstrap %s: %v\n%s\n%s", strings.Join(args, " "), err, tail(out, 20), tail(log, 20))
	}
	t.Logf("debootstrap %s: %s", suite, time.Since(start).Round(100*time.Millisecond))

	// The stub records what the maintainer scripts ask of systemd.
	stub := r.path("/usr/sbin/systemctl")
	if _, err := os.Lstat(stub); err == nil {
		t.Fatalf("%s exists: the stub would replace it", stub)
	}
	write(t, stub, "#!/bin/sh\necho \"$*\" >> /tmp/systemctl.log\n", 0o755)
	return r
}

// removeRoot deletes the root unless something is still mounted inside it
// (debootstrap mounts /proc, and /dev in a container, and unmounts them
// when it exits): deleting through a mount could reach the host's files.
func removeRoot(t *testing.T, dir string) {
	mounts, err := mountsUnder(dir)
	if err != nil || len(mounts) > 0 {
		t.Errorf("left %s in place: mounts inside it %v (%v)", dir, mounts, err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("removing the root: %v", err)
	}
}

func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

func (r *root) path(p string) string { return filepath.Join(r.dir, p) }

// run runs a command inside the root with a clean environment and no
// standard input, so a dpkg prompt fails instead of waiting.
func (r *root) run(args ...string) (string, error) {
	argv := append([]string{r.dir, "/usr/bin/env", "-i", "PATH=" + chrootPath, "LC_ALL=C.UTF-8"}, args...)
	out, err := exec.Command("chroot", argv...).CombinedOutput()
	return string(out), err
}

func (r *root) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := r.run(args...)
	if err != nil {
		t.Fatalf("in the root: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// systemdRunning makes the root look booted with systemd or not, as the
// maintainer scripts tell (/run/systemd/system exists).
func (r *root) systemdRunning(t *testing.T, yes bool) {
	t.Helper()
	marker := r.path("/run/systemd/system")
	var err error
	if yes {
		err = os.MkdirAll(marker, 0o755)
	} else {
		err = os.RemoveAll(marker)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// systemctl returns the calls the maintainer scripts made since the last
// look, one "ARGS" string each.
func (r *root) systemctl(t *testing.T) []string {
	t.Helper()
	log := r.path("/tmp/systemctl.log")
	b, err := os.ReadFile(log)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func write(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
