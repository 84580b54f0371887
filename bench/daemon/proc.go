package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// child is a measured program running as a child process, so its CPU and
// memory are its own and not the lab's.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string // where its stderr goes
	done chan struct{}
	err  error // set when done is closed
}

// start runs name with args, stdout and stderr to logPath. The child is
// killed if this process dies, so an interrupted benchmark leaves nothing
// running.
func start(label, logPath string, env []string, name string, args ...string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	c := &child{name: label, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports why the child ended early, with the tail of its log.
func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited: %v\n%s", c.name, c.err, tail(c.log, 20))
	default:
		return nil
	}
}

// stop asks the child to end (SIGTERM), and kills it if it has not within
// grace. It returns the child's exit error, if any, for a clean stop.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return c.err
	case <-t.C:
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", c.name, grace)
	}
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// usage is what /proc says about a process at one moment.
type usage struct {
	at       time.Time
	cpuTicks int64 // utime + stime of all its threads
	hwm, rss int64 // VmHWM and VmRSS, bytes

	machineBusy, machineAll int64 // ticks of all CPUs, from /proc/stat
}

func readUsage(pid int) (usage, error) {
	u := usage{at: time.Now()}
	if err := u.readMachine(); err != nil {
		return u, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// fields are counted from the last ')'. utime and stime are fields 14
	// and 15, so 11 and 12 after it.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	for _, x := range f[11:13] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		u.cpuTicks += n
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.Lines(string(status)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
		}
		if k == "VmHWM" {
			u.hwm = kb << 10
		} else {
			u.rss = kb << 10
		}
	}
	return u, nil
}

// readMachine reads the CPU time of the whole machine: the first line of
// /proc/stat, in which idle and iowait are the 4th and 5th numbers.
func (u *usage) readMachine() error {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, x := range f[1:] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return fmt.Errorf("/proc/stat: %w", err)
		}
		u.machineAll += n
		if i != 3 && i != 4 {
			u.machineBusy += n
		}
	}
	return nil
}

// othersPercent is the CPU the rest of the machine — the lab, the driver,
// anything else running — used between a and b, in percent of one core.
func othersPercent(a, b usage) float64 {
	busy := float64(b.machineBusy-a.machineBusy-(b.cpuTicks-a.cpuTicks)) / clockTicks
	return 100 * busy / b.at.Sub(a.at).Seconds()
}

// cpuPercent is the CPU the process used between a and b, in percent of one
// core.
func cpuPercent(a, b usage) float64 {
	cpu := float64(b.cpuTicks-a.cpuTicks) / clockTicks
	return 100 * cpu / b.at.Sub(a.at).Seconds()
}

// freeAddr returns a loopback address with a port nobody listens on. The
// port is closed before the child binds it; on a benchmark machine nothing
// else grabs it in between.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// waitOK polls url until it answers 200, the child ends, or timeout.
func waitOK(ctx context.Context, c *child, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if err := c.exited(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: %s not 200 after %v\n%s", c.name, url, timeout, tail(c.log, 20))
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// childEnv is this process's environment without proxy settings: every
// request of the benchmark goes to 127.0.0.1 directly.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(strings.ToLower(k), "_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// sleep waits d, or less if ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
