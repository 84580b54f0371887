package mitmwatch_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// own names packages of this module.
func own(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "github.com/mitmwatch/mitmwatch/" + n
	}
	return out
}

// Libraries the pure judgement must not need.
var serving = []string{"net/http", "github.com/prometheus/client_golang/prometheus", "go.yaml.in/yaml/v3", "gopkg.in/yaml.v3"}

// layering is the pipeline's shape as import rules: each package must not
// depend, directly or through another, on the packages listed. Renderers
// stand on the judgement, not on the prober; the judgement stands on
// nothing that dials, serves or parses files.
var layering = []struct {
	pkg       string
	forbidden []string
}{
	{"detector", append(own("check", "probe", "resolver", "config", "report", "exporter", "passive"), serving...)},
	{"fingerprints", serving},
	// Grading judges what handshakes showed; package check makes them.
	{"grade", append(own("check", "probe", "resolver", "config", "report", "exporter", "passive"), serving...)},
	{"report", own("check", "probe", "resolver", "config")},
	{"exporter", own("check", "probe", "resolver", "config")},
	{"passive", own("check", "report", "probe", "config")},
	{"resolver", own("probe", "check")},
	{"trust", own("probe", "check", "config")},
	// Predicting a tool's outcome reads its configuration and judges the
	// chain the probe kept; it never dials or serves.
	{"tools", append(own("check", "probe", "resolver", "config", "report", "exporter", "lab"), "net/http", "github.com/prometheus/client_golang/prometheus")},
	// The probes of SSH and the checksum database observe; they judge,
	// configure and render nothing.
	{"sshprobe", own("check", "probe", "config", "report", "exporter")},
	{"sumdb", own("check", "probe", "config", "report", "exporter")},
	// The binary on every build agent carries no lab: no forger, no lying
	// resolver, no intercepting proxy library.
	{"cmd/mitmwatch", append(own("lab", "scenario", "netlab"), "github.com/elazarl/goproxy")},
}

// TestLayering fails when an import breaks the pipeline's shape.
func TestLayering(t *testing.T) {
	t.Parallel()
	for _, l := range layering {
		out, err := exec.Command("go", "list", "-deps", "./"+l.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v", l.pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, f := range l.forbidden {
			if slices.Contains(deps, f) {
				t.Errorf("%s depends on %s", l.pkg, f)
			}
		}
	}
}
