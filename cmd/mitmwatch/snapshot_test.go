package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/mitmwatch/mitmwatch/trust"
)

// TestCheckKeepsTheStores: a check keeps the store files it read (the
// system's, unchanged for longer than trust's racy window) in a snapshot
// beside the checksum database's tree, this user's alone, even when no
// chain came to need them: its only target refuses the connection, and
// the system store was still loading when the report was written.
func TestCheckKeepsTheStores(t *testing.T) {
	if _, err := os.Stat(trust.CertFiles[0]); err != nil {
		t.Skipf("no system bundle at %s: %v", trust.CertFiles[0], err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("toolchain: none\ntargets:\n  - host: closed.example\n    address: "+closed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	c := cli{t: t, env: map[string]string{"XDG_CACHE_HOME": cache}}
	if code, out, stderr := c.run("check", "--config", rules, "-o", "json"); code != 3 {
		t.Fatalf("exit %d, want 3 (unreachable): %s %s", code, out, stderr)
	}
	info, err := os.Lstat(filepath.Join(cache, "mitmwatch", trust.SnapshotFile))
	if err != nil {
		t.Fatalf("no snapshot of the stores: %v", err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 || info.Size() == 0 {
		t.Errorf("the snapshot is %v, %d bytes; want a regular file of 0600 with the stores", info.Mode(), info.Size())
	}
}
