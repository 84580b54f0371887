//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a program the lab started inside a namespace, with its output in
// a log file. It runs in its own process group so that Stop also ends the
// helpers it forks (squid's certificate generators).
type Proc struct {
	Name string
	Log  string // path of its combined stdout and stderr
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// stopGrace is how long a stopped program may take to exit on SIGTERM
// before its process group is killed.
const stopGrace = 3 * time.Second

// startProc starts name with args in the namespace ns, with exactly env as
// its environment. The program dies with the calling process too
// (Pdeathsig), unless it changes its credentials.
func startProc(ns, dir, label string, env []string, name string, args ...string) (*Proc, error) {
	logPath := filepath.Join(dir, label+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	p := &Proc{Name: label, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// spawner forks every child from one OS thread that never exits. Linux
// sends Pdeathsig when the thread that forked a child ends, not the
// process, and Go ends the threads of goroutines that exit locked (as Do's
// do): a child forked from such a thread would be killed at a random time.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // for the life of the process
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd, make(chan error, 1)}
	spawner.reqs <- r
	return <-r.err
}

// Pid is the process's id, which is also its process group's.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process group: SIGTERM, then SIGKILL after stopGrace. It
// waits for the process itself; a killed group leaves no member behind.
func (p *Proc) Stop() error {
	if p.Exited() {
		return nil
	}
	pgid := p.Pid()
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, pgid)
		}
	}
	// Helpers that outlived their parent in the group.
	syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// Tail is the end of the process's log, for error messages.
func (p *Proc) Tail() string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	const tailBytes = 2000
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	return strings.TrimSpace(string(b))
}

// Readiness polls: every pollEvery, at most readyTimeout in all.
const (
	pollEvery    = 50 * time.Millisecond
	readyTimeout = 30 * time.Second
)

// waitListening polls until a TCP connection to addr, dialled from inside
// ns, succeeds. It gives up early when p (if not nil) has exited, with its
// log in the error.
func waitListening(ns, addr string, p *Proc) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for i := 0; time.Now().Before(deadline) && i < int(readyTimeout/pollEvery); i++ {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before listening on %s: %v\n%s", p.Name, addr, p.err, p.Tail())
		}
		last = Do(ns, func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			return c.Close()
		})
		if last == nil {
			return nil
		}
		time.Sleep(pollEvery)
	}
	msg := ""
	if p != nil {
		msg = "\n" + p.Tail()
	}
	return fmt.Errorf("nothing listens on %s in %s after %s: %w%s", addr, ns, readyTimeout, last, msg)
}

// stopAll stops every process, last started first.
func stopAll(procs []*Proc) error {
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		errs = append(errs, procs[i].Stop())
	}
	return errors.Join(errs...)
}
