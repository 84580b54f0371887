//go:build linux

package netlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// RecordDir holds one JSON record per live lab: what it created and who
// owns it. `netlab exec` finds a lab there, and Prune removes what a lab
// whose owner died (killed, or a test binary that timed out) left behind.
const RecordDir = "/run/netlab"

// record is a lab's entry in RecordDir.
type record struct {
	path       string
	ID         string   `json:"id"`
	Owner      procID   `json:"owner"`
	Namespaces []string `json:"namespaces"`
	Procs      []procID `json:"procs"`
	Dir        string   `json:"dir"`
	Client     string   `json:"client"`
	Scenario   string   `json:"scenario,omitempty"`
	// ClientEnv is what a program in the client namespace should see
	// (HTTPS_PROXY, MITMWATCH_CONFIG); see Lab.ClientEnv.
	ClientEnv []string `json:"client_env,omitempty"`
}

// procID names a process across pid reuse: its pid and its start time in
// clock ticks since boot.
type procID struct {
	Pid   int    `json:"pid"`
	Start string `json:"start"`
}

func newRecord(l *Lab) (*record, error) {
	if err := os.MkdirAll(RecordDir, 0o755); err != nil {
		return nil, err
	}
	me, err := identify(os.Getpid())
	if err != nil {
		return nil, err
	}
	r := &record{path: filepath.Join(RecordDir, l.ID+".json"), ID: l.ID, Owner: me}
	return r, r.save(l)
}

// save rewrites the record from the lab's state, atomically.
func (r *record) save(l *Lab) error {
	r.Namespaces, r.Dir, r.Client = l.nets, l.Dir, l.Client
	r.Scenario, r.ClientEnv = l.Scenario, l.ClientEnv
	r.Procs = r.Procs[:0]
	for _, p := range l.procs {
		if id, err := identify(p.Pid()); err == nil {
			r.Procs = append(r.Procs, id)
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(r.path, b, 0o644)
}

func (r *record) remove() error {
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// identify reads a process's start time from /proc/PID/stat.
func identify(pid int) (procID, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procID{}, err
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted after its closing one. starttime is field 22, the 20th after.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procID{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return procID{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return procID{Pid: pid, Start: f[19]}, nil
}

// alive reports whether the very process id names still runs.
func (id procID) alive() bool {
	now, err := identify(id.Pid)
	return err == nil && now.Start == id.Start
}

// Records lists the labs in RecordDir, live or not.
func Records() ([]LabInfo, error) {
	paths, err := filepath.Glob(filepath.Join(RecordDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []LabInfo
	for _, p := range paths {
		r, err := readRecord(p)
		if err != nil {
			return nil, err
		}
		out = append(out, LabInfo{ID: r.ID, Client: r.Client, Scenario: r.Scenario, Dir: r.Dir,
			ClientEnv: r.ClientEnv, Owner: r.Owner.Pid, Live: r.Owner.alive()})
	}
	return out, nil
}

// LabInfo describes a lab from its record.
type LabInfo struct {
	ID, Client, Scenario, Dir string
	ClientEnv                 []string
	Owner                     int  // pid of the process that owns it
	Live                      bool // whether that process still runs
}

func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &record{path: path}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Prune removes the leftovers of labs whose owner is gone: it kills their
// recorded processes (only if still the same processes), deletes their
// namespaces, /etc/netns files and directory, and returns their ids. Labs
// with a live owner are left alone, so concurrent runs are safe.
func Prune() ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(RecordDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var ids []string
	var errs []error
	for _, p := range paths {
		r, err := readRecord(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Owner.alive() {
			continue
		}
		for _, pr := range r.Procs {
			if pr.alive() {
				syscall.Kill(-pr.Pid, syscall.SIGKILL) // its process group
				syscall.Kill(pr.Pid, syscall.SIGKILL)
			}
		}
		for _, ns := range r.Namespaces {
			errs = append(errs, delNetns(ns))
		}
		if r.Dir != "" && strings.HasPrefix(filepath.Base(r.Dir), "netlab-") {
			errs = append(errs, os.RemoveAll(r.Dir))
		}
		errs = append(errs, r.remove())
		ids = append(ids, r.ID)
	}
	return ids, errors.Join(errs...)
}
