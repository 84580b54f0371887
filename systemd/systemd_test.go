package systemd

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const (
	unitName   = "mitmwatch.service"
	socketName = "mitmwatch.socket"
	// maxExposure is the highest `systemd-analyze security` score allowed.
	maxExposure = 2.0
)

// setting is one Key=Value line of a unit file.
type setting struct{ section, key, value string }

// parseUnit reads a unit file's settings in order; a key may repeat.
func parseUnit(t *testing.T, path string) []setting {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []setting
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "", strings.HasPrefix(line, "#"), strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a setting: %q", path, line)
			}
			out = append(out, setting{section, strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return out
}

// values returns every value of a key in a section, in order.
func values(settings []setting, section, key string) []string {
	var out []string
	for _, s := range settings {
		if s.section == section && s.key == key {
			out = append(out, s.value)
		}
	}
	return out
}

// TestUnitSettings pins what the daemon and the operators rely on, without
// needing systemd.
func TestUnitSettings(t *testing.T) {
	u := parseUnit(t, unitName)
	for _, want := range []setting{
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "ExecStart", "/usr/bin/mitmwatch run --config /etc/mitmwatch/rules.yaml --web.listen-address=:16486"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "Restart", "on-failure"},
		{"Service", "DynamicUser", "yes"},
		{"Service", "StateDirectory", "mitmwatch"},
		{"Service", "ConfigurationDirectory", "mitmwatch"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Service", "AmbientCapabilities", ""},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"Service", "SystemCallFilter", "@system-service"},
		{"Service", "MemoryDenyWriteExecute", "yes"},
		{"Service", "UMask", "0077"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		got := values(u, want.section, want.key)
		if len(got) == 0 || !contains(got, want.value) {
			t.Errorf("[%s] %s=%q, want %q among them", want.section, want.key, got, want.value)
		}
	}
	if len(values(u, "Service", "WatchdogSec")) != 1 {
		t.Error("WatchdogSec must be set once: the daemon pings from its scheduler loop")
	}
	// The probes must reach the registries over the agent's real path.
	for _, k := range []string{"IPAddressDeny", "PrivateNetwork"} {
		if v := values(u, "Service", k); len(v) > 0 {
			t.Errorf("%s=%v would stop the probes", k, v)
		}
	}

	c := parseUnit(t, "capture.conf")
	for _, want := range []setting{
		{"Service", "CapabilityBoundingSet", "CAP_NET_RAW"},
		{"Service", "AmbientCapabilities", "CAP_NET_RAW"},
		{"Service", "RestrictAddressFamilies", "AF_PACKET"},
		{"Service", "PrivateUsers", "no"},
	} {
		if got := values(c, want.section, want.key); len(got) != 1 || got[0] != want.value {
			t.Errorf("capture.conf: [%s] %s=%q, want %q", want.section, want.key, got, want.value)
		}
	}
	if len(c) != 4 {
		t.Errorf("capture.conf has %d settings, want only the 4 capture needs: %v", len(c), c)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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

// unitRoot builds a file system root in which the unit verifies exactly as
// shipped: the unit (and drop-ins) under /etc/systemd/system, a stub
// executable at every Exec*= path (so verify checks the paths the unit
// really names), and a copy of the host's system units for the targets it
// depends on.
func unitRoot(t *testing.T, dropIns ...string) string {
	t.Helper()
	root := t.TempDir()
	seen := map[string]bool{}
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		copyTree(t, real, filepath.Join(root, dir))
	}
	if len(seen) == 0 {
		t.Fatal("no system unit directory on this host")
	}
	etc := filepath.Join(root, "etc", "systemd", "system")
	install(t, unitName, filepath.Join(etc, unitName))
	install(t, socketName, filepath.Join(etc, socketName))
	for _, d := range dropIns {
		install(t, d, filepath.Join(etc, unitName+".d", filepath.Base(d)))
	}
	for _, s := range parseUnit(t, unitName) {
		if !strings.HasPrefix(s.key, "Exec") || s.value == "" {
			continue
		}
		path := strings.TrimLeft(strings.Fields(s.value)[0], "-@:+!")
		stub := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func install(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies directories, regular files and symlinks (kept as links:
// masked and aliased units are symlinks).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func analyze(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(requireTool(t, "systemd-analyze"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var configs = []struct {
	name    string
	dropIns []string
}{
	{"unit", nil},
	{"unit+capture", []string{"capture.conf"}},
	{"unit+socket", []string{"socket.conf"}},
}

// TestSystemdAnalyzeVerify: verify exits 0 even for unknown keys and bad
// values, which it only prints; so any output at all fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	requireTool(t, "systemd-analyze")
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			root := unitRoot(t, c.dropIns...)
			if out := analyze(t, "verify", "--root="+root, "--man=no", unitName, socketName); strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify:\n%s", out)
			}
		})
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitName) + `: ([0-9]+(?:\.[0-9]+)?)`)

func TestSystemdAnalyzeSecurity(t *testing.T) {
	requireTool(t, "systemd-analyze")
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			root := unitRoot(t, c.dropIns...)
			out := analyze(t, "security", "--offline=true", "--root="+root, "--no-pager", unitName)
			m := exposure.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no overall exposure in:\n%s", out)
			}
			score, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("exposure %.1f", score)
			if score > maxExposure {
				t.Errorf("exposure %.1f > %.1f:\n%s", score, maxExposure, out)
			}
		})
	}
}
