package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mitmwatch/mitmwatch/trust"
)

// TestCheckKeepsTheStores: a check keeps the store files it read, those
// unchanged for more than trust's racy window (the system's), in a
// snapshot beside the checksum database's tree; the next check reads
// its stores from it and keeps it as it is.
func TestCheckKeepsTheStores(t *testing.T) {
	if _, err := os.Stat(trust.CertFiles[0]); err != nil {
		t.Skipf("no system bundle at %s: %v", trust.CertFiles[0], err)
	}
	// A TLS server whose chain the check verifies against the default
	// stores: the public roots built in, and the system's.
	e := newEnv(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("toolchain: none\ntargets:\n  - host: github.com\n    address: "+e.Origin.Addr()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	c := cli{t: t, env: map[string]string{"XDG_CACHE_HOME": cache}}
	args := []string{"check", "--config", rules, "-o", "json"}
	if code, out, stderr := c.run(args...); code == 2 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	path := filepath.Join(cache, "mitmwatch", trust.SnapshotFile)
	first, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no snapshot of the stores: %v", err)
	}
	if code, out, stderr := c.run(args...); code == 2 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	again, err := os.Stat(path)
	if err != nil || !os.SameFile(first, again) || !again.ModTime().Equal(first.ModTime()) {
		t.Errorf("the snapshot was written again by a check whose stores had not changed: %v", err)
	}
}
