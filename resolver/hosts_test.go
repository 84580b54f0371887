package resolver

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseHosts(t *testing.T) {
	t.Parallel()
	const file = `# The Debian default, and what organisations add.
127.0.0.1	localhost
127.0.1.1	agent-01.ci.lab.example	agent-01
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes

10.20.0.5   registry.lab.example  Mirror.Lab.Example.   # the internal mirror
10.20.0.6   registry.lab.example
10.20.0.5   registry.lab.example
0.0.0.0 ads.lab.example
fe80::1%eth0 router.lab.example
not-an-address  junk.lab.example
192.0.2.9
	# an indented comment 192.0.2.10 commented.lab.example
`
	names := parseHosts([]byte(file))
	for name, want := range map[string][]netip.Addr{
		"localhost":             addrs("127.0.0.1", "::1"),
		"LOCALHOST.":            addrs("127.0.0.1", "::1"),
		"agent-01":              addrs("127.0.1.1"),
		"registry.lab.example":  addrs("10.20.0.5", "10.20.0.6"),
		"mirror.lab.example":    addrs("10.20.0.5"),
		"ads.lab.example":       addrs("0.0.0.0"),
		"router.lab.example":    addrs("fe80::1%eth0"),
		"junk.lab.example":      nil,
		"commented.lab.example": nil,
	} {
		if d := cmp.Diff(want, names[hostsKey(name)], addrCmp); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
}

func TestNSSwitchOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content string
		want          HostsOrder
	}{
		{"Debian", "passwd: files\nhosts:          files dns\nnetworks: files\n", HostsFirst},
		{"Ubuntu desktop", "hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n", HostsFirst},
		{"systemd-resolved reads the file itself", "hosts: mymachines resolve [!UNAVAIL=return] files myhostname dns\n", HostsFirst},
		{"dns first", "hosts: dns files\n", HostsAfterDNS},
		{"dns first, criteria with spaces", "hosts: dns [ NOTFOUND=return ] files\n", HostsAfterDNS},
		{"no files", "hosts: dns\n", HostsNever},
		{"upper case source", "hosts: FILES dns\n", HostsFirst},
		{"commented out", "#hosts: dns files\nhosts: files dns # then dns\n", HostsFirst},
		{"no hosts line", "passwd: files\n", HostsFirst},
		{"hostsfoo is another database", "hostsfoo: dns\n", HostsFirst},
		{"empty", "", HostsFirst},
	}
	for _, tt := range tests {
		if got := nsswitchOrder([]byte(tt.content)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestReadNSSwitch(t *testing.T) {
	t.Parallel()
	if o, err := ReadNSSwitch(filepath.Join(t.TempDir(), "absent")); o != HostsFirst || err != nil {
		t.Errorf("absent file: %s, %v; want files first, no error", o, err)
	}
	if o, err := ReadNSSwitch(writeFile(t, "nsswitch.conf", "hosts: dns files\n")); o != HostsAfterDNS || err != nil {
		t.Errorf("dns files: %s, %v", o, err)
	}
	if _, err := ReadNSSwitch(t.TempDir()); err == nil {
		t.Error("a directory read as nsswitch.conf: no error")
	}
}

// TestHostsLookup reads a real file, sees it change, and answers as the
// system's hosts source: with the file named, no rcode, no TTL.
func TestHostsLookup(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "hosts", "127.0.0.1 localhost\n::1 localhost\n10.20.0.5 registry.lab.example\n")
	h := &Hosts{Path: path}
	got, ok := h.Lookup("Registry.Lab.Example")
	want := detector.DNSAnswer{Resolver: "hosts " + path, System: true, Source: detector.SourceHosts, Addrs: addrs("10.20.0.5")}
	if d := cmp.Diff(want, got, addrCmp); !ok || d != "" {
		t.Errorf("lookup (ok %v) (-want +got):\n%s", ok, d)
	}
	if !got.Answered() {
		t.Error("a hosts answer does not count as answered")
	}
	if got, ok := h.Lookup("localhost"); !ok || len(got.Addrs) != 2 {
		t.Errorf("localhost: %v %+v", ok, got)
	}
	if _, ok := h.Lookup("other.lab.example"); ok {
		t.Error("a name the file does not list was answered")
	}

	// An edit is seen at the next lookup, without a restart.
	if err := os.WriteFile(path, []byte("10.20.0.6 registry.lab.example other.lab.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute) // the edit may land within the clock's granularity
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.Lookup("registry.lab.example"); !ok || cmp.Diff(addrs("10.20.0.6"), got.Addrs, addrCmp) != "" {
		t.Errorf("after the edit: %v %+v", ok, got)
	}
	if _, ok := h.Lookup("other.lab.example"); !ok {
		t.Error("a name added by the edit is not answered")
	}

	// A file that goes away answers nothing; Check does not mind.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Lookup("registry.lab.example"); ok {
		t.Error("a removed file still answers")
	}
	if err := h.Check(); err != nil {
		t.Errorf("Check of a missing file: %v", err)
	}
	if err := (&Hosts{Path: t.TempDir()}).Check(); err == nil {
		t.Error("Check of a directory: no error")
	}
}
