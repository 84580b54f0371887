//go:build linux

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// launcher starts child processes inside a network namespace with
// resolvConf mounted over /etc/resolv.conf, as `ip netns exec` does, but
// from a thread of this process that entered the namespaces once: running
// ip for every child would add its own exec to every wall time measured.
//
// Linux keeps the network and mount namespaces per thread, and a forked
// child inherits the forking thread's. The launcher's goroutine is locked to
// its thread for good, so every fork it makes lands there; the thread dies
// with the goroutine once close is called.
type launcher struct {
	reqs chan launchReq
}

type launchReq struct {
	cmd *exec.Cmd
	err chan error
}

func newLauncher(netns, resolvConf string) (*launcher, error) {
	l := &launcher{reqs: make(chan launchReq)}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is no longer like the others
		if err := enterNamespaces(netns, resolvConf); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for r := range l.reqs {
			r.err <- r.cmd.Start()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return l, nil
}

// enterNamespaces moves the calling thread into a mount namespace of its
// own, where resolvConf is /etc/resolv.conf, and into the network
// namespace netns.
func enterNamespaces(netns, resolvConf string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	// Nothing mounted here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	if err := unix.Mount(resolvConf, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s over /etc/resolv.conf: %w", resolvConf, err)
	}
	fd, err := unix.Open(filepath.Join("/run/netns", netns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns %s: %w", netns, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", netns, err)
	}
	return nil
}

// close ends the launcher's thread.
func (l *launcher) close() { close(l.reqs) }

// sample is what one child process cost.
type sample struct {
	wall   time.Duration
	cpu    time.Duration // user and system, its waited-for children included
	maxRSS int64         // bytes
	code   int           // exit code
	out    []byte
	stderr []byte // kept for the caller to judge, not printed
}

// childTimeout bounds every child: a check whose references are dropped
// stalls on their timeouts, nothing should take longer than this.
const childTimeout = 60 * time.Second

// run starts name in the namespaces with exactly env, in dir, and waits
// for it. An exit code other than 0 is not an error: callers judge it, and
// what the child wrote to stderr, which is kept, not shown.
func (l *launcher) run(env []string, dir, name string, args ...string) (sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, errOut := &limitedBuffer{limit: 4 << 20}, &limitedBuffer{limit: 64 << 10}
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, dir, out, errOut
	start := time.Now()
	r := launchReq{cmd, make(chan error, 1)}
	l.reqs <- r
	if err := <-r.err; err != nil {
		return sample{}, fmt.Errorf("start %s: %w", name, err)
	}
	err := cmd.Wait()
	wall := time.Since(start)
	if ctx.Err() != nil {
		return sample{}, fmt.Errorf("%s: killed after %v; its stderr: %q", name, childTimeout, errOut.buf)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		return sample{}, fmt.Errorf("%s: %w", name, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return sample{
		wall:   wall,
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		maxRSS: ru.Maxrss * 1024,
		code:   cmd.ProcessState.ExitCode(),
		out:    out.buf,
		stderr: errOut.buf,
	}, nil
}

// limitedBuffer keeps at most limit bytes of a child's output.
type limitedBuffer struct {
	buf   []byte
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}
