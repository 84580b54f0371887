package main

import (
	"os/exec"
	"strings"
	"testing"
)

// labPackages are test equipment: an in-process lab with a CA forger, a
// lying resolver and a third-party MITM proxy library, and the scenarios
// and namespaces built on them. mitmwatch-demo and the tests use them; the
// binary shipped to build agents must not link them.
var labPackages = []string{
	"github.com/mitmwatch/mitmwatch/lab",
	"github.com/mitmwatch/mitmwatch/scenario",
	"github.com/mitmwatch/mitmwatch/netlab",
	"github.com/elazarl/goproxy",
	// a lab checksum database and lab SSH servers
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest",
	"github.com/mitmwatch/mitmwatch/sshprobe/sshtest",
}

// TestShipsNoLab lists what the mitmwatch binary links (go test puts its
// own go command first on PATH) and fails on any lab package.
func TestShipsNoLab(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/mitmwatch/mitmwatch/cmd/mitmwatch" {
		t.Fatalf("go list -deps . does not end with the command itself:\n%s", out)
	}
	for _, pkg := range deps {
		for _, lab := range labPackages {
			if pkg == lab || strings.HasPrefix(pkg, lab+"/") {
				t.Errorf("mitmwatch links %s", pkg)
			}
		}
	}
}
