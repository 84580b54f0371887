//go:build linux

package netlab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps the namespaces it names.
const netnsDir = "/run/netns"

// etcNetnsDir holds the per-namespace files `ip netns exec` bind-mounts
// over /etc (resolv.conf, hosts).
const etcNetnsDir = "/etc/netns"

// cmdTimeout bounds every administrative command (ip, nft, sysctl).
const cmdTimeout = 20 * time.Second

// run runs an administrative command and returns its error with the
// command line and its output, so a failed setup says what failed.
func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// inNS runs cmd with args inside the namespace ns.
func inNS(ns, name string, args ...string) error {
	return run("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// addNetns creates a named namespace with its loopback up.
func addNetns(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	return run("ip", "-n", name, "link", "set", "lo", "up")
}

// delNetns deletes a namespace and its /etc/netns files; a namespace that
// is already gone is no error.
func delNetns(name string) error {
	var err error
	if _, statErr := os.Stat(filepath.Join(netnsDir, name)); statErr == nil {
		err = run("ip", "netns", "del", name)
	}
	if rmErr := os.RemoveAll(filepath.Join(etcNetnsDir, name)); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}

// writeEtc gives a namespace its own resolv.conf and hosts.
func writeEtc(ns string, files map[string]string) error {
	dir := filepath.Join(etcNetnsDir, ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Do runs f on an OS thread that has entered the namespace ns, so the
// sockets f opens (listeners, dials) live there; they stay there after f
// returns. The thread is never handed back to the Go scheduler: the
// goroutine ends locked, and the runtime retires the thread with it.
func Do(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: this thread's namespace is no longer the
		// process's, so it must die with the goroutine.
		fd, err := syscall.Open(filepath.Join(netnsDir, ns), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer syscall.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
