package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/trust"
)

// TestCheckToolSection: with the toolchain read, check says what npm will
// do with the registry its .npmrc names; --tool npm probes only npm's
// hosts, and --write-ca writes the CA its fix installs.
func TestCheckToolSection(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" {
			t.Fatal("npm is not installed")
		}
		t.Skip("npm is not installed")
	}
	e := newEnv(t)
	f, err := lab.NewForger(lab.ForgerOptions{CA: e.PKI.EnterpriseRoot})
	must(t, err)
	e.Track(f)
	rules := writeRules(t, e, "", labTarget{"registry.lab.example", f.Addr()}, labTarget{"github.com", e.Origin.Addr()})
	home := goHome(t)
	must(t, os.WriteFile(filepath.Join(home, ".npmrc"), []byte("registry=https://registry.lab.example/\n"), 0o644))
	global := filepath.Join(home, "npmrc-global")
	must(t, os.WriteFile(global, nil, 0o644))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	c := cli{t: t, audit: true, env: map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config"), "npm_config_globalconfig": global}}
	code, out, stderr := c.run("check", "--config", rules, "-o", "json", "--tool", "npm", "--write-ca", caFile)
	var doc struct {
		Targets []struct{ Host, Verdict string } `json:"targets"`
		Tools   []struct {
			Tool    string
			Store   string
			Targets []struct{ Host, Outcome, Error, Fix string }
		} `json:"tools"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s %s", err, out, stderr)
	}
	if code != 1 || len(doc.Targets) != 1 || doc.Targets[0].Host != "registry.lab.example" || doc.Targets[0].Verdict != "intercepted" {
		t.Errorf("exit %d, targets %+v; want only npm's registry, intercepted", code, doc.Targets)
	}
	if len(doc.Tools) != 1 || doc.Tools[0].Tool != "npm" || len(doc.Tools[0].Targets) != 1 {
		t.Fatalf("tools %+v; want npm alone, with its registry", doc.Tools)
	}
	p := doc.Tools[0].Targets[0]
	if p.Outcome != "fails" || !strings.HasPrefix(p.Error, "UNABLE_TO_VERIFY_LEAF_SIGNATURE: ") || !strings.Contains(p.Fix, "NODE_EXTRA_CA_CERTS="+caFile) {
		t.Errorf("npm's prediction %+v", p)
	}
	_, cas, err := trust.LoadPEM(caFile)
	if err != nil || len(cas) != 1 || !cas[0].Equal(e.PKI.EnterpriseRoot.Cert) {
		t.Errorf("--write-ca wrote %d certificates (%v); want the inspection root", len(cas), err)
	}

	code, out, _ = c.run("check", "--config", rules, "--tool", "npm", "--no-color")
	if code != 1 || !strings.Contains(out, "What each build tool will do on this path") || !strings.Contains(out, "fails npm registry.lab.example:443") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	if code, _, stderr := c.run("check", "--config", rules, "--tool", "maven"); code != 2 || !strings.Contains(stderr, "unknown tool") {
		t.Errorf("--tool maven: exit %d, %s", code, stderr)
	}
}
