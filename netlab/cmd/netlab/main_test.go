//go:build linux

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/netlab"
)

// The test binary runs the command's main when asked to, so the tests see
// exactly what a user of the command sees: output and exit code.
func TestMain(m *testing.M) {
	if os.Getenv("NETLAB_CMD_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func command(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "NETLAB_CMD_MAIN=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestScenariosListsEveryScenario(t *testing.T) {
	out, _, code := command(t, "scenarios")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(netlab.Scenarios) {
		t.Errorf("%d lines for %d scenarios:\n%s", len(lines), len(netlab.Scenarios), out)
	}
	for _, s := range netlab.Scenarios {
		if !strings.Contains(out, s.Name) {
			t.Errorf("scenario %s not listed", s.Name)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}} {
		_, stderr, code := command(t, args...)
		if code != 2 || !strings.Contains(stderr, "usage: netlab") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}
