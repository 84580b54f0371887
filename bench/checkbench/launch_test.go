//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLauncher: a child runs in the network namespace with the resolver
// file bound over /etc/resolv.conf, with exactly the environment given,
// at the priority of the bench itself (neither raised nor lowered), and
// its exit code and output come back; the host's /etc/resolv.conf is
// untouched.
func TestLauncher(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: network and mount namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command")
	}
	netns := fmt.Sprintf("mwlaunch-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", netns).Run() })
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	// Read before the launcher starts: afterwards /proc/self/ns/net (the
	// thread group leader's) may be the launcher's own thread's.
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLauncher(netns, resolv)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()

	t.Setenv("MW_LAUNCH_LEAK", "1") // the bench's own environment must not reach the child
	ours, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	script := `cat /etc/resolv.conf; readlink /proc/self/ns/net; nice; echo "$ONLY"; echo "leak=$MW_LAUNCH_LEAK"; exit 3`
	s, err := l.run([]string{"ONLY=this", "PATH=" + os.Getenv("PATH")}, t.TempDir(), "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(s.out)), "\n")
	if len(lines) != 5 || s.code != 3 {
		t.Fatalf("exit %d, output %q", s.code, s.out)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", netns), &st); err != nil {
		t.Fatal(err)
	}
	if lines[0] != "nameserver 192.0.2.53" {
		t.Errorf("the child's /etc/resolv.conf: %q", lines[0])
	}
	if want := fmt.Sprintf("net:[%d]", st.Ino); lines[1] != want || lines[1] == hostNet {
		t.Errorf("the child's network namespace %s, want %s (the host's is %s)", lines[1], want, hostNet)
	}
	// Getpriority gives the kernel's 20 - niceness; nice prints the niceness.
	if want := fmt.Sprint(20 - ours); lines[2] != want {
		t.Errorf("the child runs at niceness %s, the bench at %s", lines[2], want)
	}
	if lines[3] != "this" || lines[4] != "leak=" {
		t.Errorf("the child's environment: ONLY=%q, %s", lines[3], lines[4])
	}
	if after, _ := os.ReadFile("/etc/resolv.conf"); string(after) != string(hostResolv) {
		t.Error("the host's /etc/resolv.conf changed")
	}
}
