package toolchain

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The go command never runs with a GOTOOLCHAIN that could download a
// toolchain, whatever the environment says; other commands are untouched.
func TestExecRunsGoWithLocalToolchain(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a shell script stands in for go")
	}
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"$GOTOOLCHAIN\"\n"
	for _, name := range []string{"go", "npm"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	t.Setenv("GOTOOLCHAIN", "go1.99.0+auto")
	for name, want := range map[string]string{"go": "local", "npm": "go1.99.0+auto"} {
		out, err := Exec(context.Background(), name, "env")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s ran with GOTOOLCHAIN=%q, want %q", name, got, want)
		}
	}
	if env := CommandEnv("/usr/local/go/bin/go", []string{"GOTOOLCHAIN=auto"}); env[len(env)-1] != "GOTOOLCHAIN=local" {
		t.Errorf("CommandEnv for a go path: %q, want GOTOOLCHAIN=local last", env)
	}
}
