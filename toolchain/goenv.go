package toolchain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// This file reads the go command's module settings the way the go command
// does, so that a check need not start it: `go env` costs 10-20 ms of CPU
// a time, more than the rest of reading the toolchain's configuration.
// What it reads, and in which order, follows cmd/go/internal/cfg
// (EnvFile, initEnvCache, readEnvFile, Getenv, EnvOrAndChanged and
// findGOROOT): a variable's value is
//
//  1. the process environment's, when not empty;
//  2. else the user's go env file's (`go env -w`): $GOENV, none with
//     GOENV=off, else os.UserConfigDir()/go/env;
//  3. else $GOROOT/go.env's, where Go 1.21 and later keep their defaults
//     (the module proxy, the checksum database, GOTOOLCHAIN);
//  4. else the command's built-in default: empty, or for GONOPROXY and
//     GONOSUMDB the value of GOPRIVATE.
//
// Only go itself knows its built-in GOROOT and, before Go 1.21, its
// built-in defaults; where those would decide, the resolver says it cannot
// answer and the caller runs `go env`.

// GoEnvFrom says which layer a go variable's value comes from.
type GoEnvFrom int

const (
	// GoDefault: no layer sets the variable, or it is derived, so the
	// value is the go command's own: empty, GOPRIVATE's value for
	// GONOPROXY and GONOSUMDB, the GOROOT it found, the default go env
	// file.
	GoDefault GoEnvFrom = iota
	// GoFromEnvironment: the process environment sets it.
	GoFromEnvironment
	// GoFromUserFile: the user's go env file (`go env -w`) sets it.
	GoFromUserFile
	// GoFromGOROOT: $GOROOT/go.env, the toolchain's defaults, sets it.
	GoFromGOROOT
)

// GoEnvValue is a go variable's value as `go env` prints it, and where it
// came from, so a report can name the line to edit.
type GoEnvValue struct {
	Value string
	From  GoEnvFrom
	// File and Line locate the line that set the value, for
	// GoFromUserFile and GoFromGOROOT.
	File string
	Line int
}

// Source renders where the value came from: "environment", "file:line",
// or "default" for the go command's own.
func (v GoEnvValue) Source() string {
	switch v.From {
	case GoFromEnvironment:
		return "environment"
	case GoFromUserFile, GoFromGOROOT:
		return fmt.Sprintf("%s:%d", v.File, v.Line)
	}
	return "default"
}

// GoEnvLine is a value of a go env file and the line it is on.
type GoEnvLine struct {
	Value string
	Line  int // 1-based
}

// ParseGoEnvFile reads a go env file the way the go command does: lines
// split at "\n" only (a "\r" before it stays in the value, as `go env`
// prints it), a line without "=" or not starting with an upper-case ASCII
// letter ignored, and of a key given twice the last value kept, which is
// how the go command reads the user's file. ($GOROOT/go.env is read
// keeping the first; ResolveGoEnv does that itself.)
func ParseGoEnvFile(data []byte) map[string]GoEnvLine {
	out := map[string]GoEnvLine{}
	for _, e := range goEnvEntries(data) {
		out[e.key] = e.GoEnvLine
	}
	return out
}

type goEnvEntry struct {
	key string
	GoEnvLine
}

// goEnvEntries are the KEY=value lines of a go env file, in order.
func goEnvEntries(data []byte) []goEnvEntry {
	var out []goEnvEntry
	for i, line := range bytes.Split(data, []byte("\n")) {
		eq := bytes.IndexByte(line, '=')
		if eq < 0 || line[0] < 'A' || line[0] > 'Z' {
			continue
		}
		out = append(out, goEnvEntry{string(line[:eq]), GoEnvLine{string(line[eq+1:]), i + 1}})
	}
	return out
}

// GoEnvOptions are ResolveGoEnv's seams. The zero value reads this
// process's environment, finds go on its PATH and reads the real files.
type GoEnvOptions struct {
	// Getenv reads the environment the go command would run with; nil
	// means os.Getenv.
	Getenv func(string) string
	// LookPath finds the go command, as exec.Command would; nil means
	// exec.LookPath. An error matching exec.ErrNotFound means go is not
	// installed.
	LookPath func(file string) (string, error)
	// ReadFile reads a go env file. An error matching fs.ErrNotExist means
	// there is none; any other error means the files cannot answer (the go
	// command might read what this cannot). Nil means ReadGoEnvFile.
	ReadFile func(path string) ([]byte, error)
}

// GoEnv is what the go command's settings are, read without running it.
type GoEnv struct {
	// Missing reports that the go command is not installed: there are no
	// go settings.
	Missing bool
	// Answered reports whether the values are what `go env` prints. When
	// go is installed but the files cannot settle that — no
	// $GOROOT/go.env (a Go before 1.21 keeps its defaults in the binary,
	// or an unusual layout hides GOROOT), a file that cannot be read, a
	// relative path that depends on where go runs — the caller has to ask
	// `go env`.
	Answered bool
	// Why says why the files cannot answer, when they cannot.
	Why string
	// Go is the go command found on PATH.
	Go string
	// UserFile is the user's go env file that was read, "" when there is
	// none (GOENV=off, no config directory); it need not exist.
	UserFile string
	// GOROOTFile is the $GOROOT/go.env that was read.
	GOROOTFile string

	vars map[string]GoEnvValue
}

// goEnvVars are the variables ResolveGoEnv knows the defaults of.
var goEnvVars = []string{
	"GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB",
	"GOINSECURE", "GOFLAGS", "GOENV", "GOROOT",
}

// Lookup returns the value of one of GOPROXY, GOSUMDB, GOPRIVATE,
// GONOPROXY, GONOSUMDB, GOINSECURE, GOFLAGS, GOENV and GOROOT, as `go env`
// prints it. ok is false for any other variable, whose built-in default
// this package does not know, and when the files could not answer.
func (e GoEnv) Lookup(key string) (v GoEnvValue, ok bool) {
	v, ok = e.vars[key]
	return v, ok
}

// ResolveGoEnv reads the go command's module settings from the
// environment, the user's go env file and $GOROOT/go.env, as the go
// command itself would, so that `go env` need not run.
func ResolveGoEnv(o GoEnvOptions) GoEnv {
	getenv, lookPath, readFile := o.Getenv, o.LookPath, o.ReadFile
	if getenv == nil {
		getenv = os.Getenv
	}
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if readFile == nil {
		readFile = ReadGoEnvFile
	}
	var r GoEnv
	cannot := func(format string, args ...any) GoEnv {
		r.Why = fmt.Sprintf(format, args...)
		return r
	}

	gocmd, err := lookPath("go")
	if errors.Is(err, exec.ErrNotFound) {
		r.Missing = true
		return r
	}
	if err != nil {
		return cannot("finding go: %v", err)
	}
	r.Go = gocmd

	// The user's file.
	user := map[string]GoEnvLine{}
	goenv := GoEnvValue{From: GoDefault}
	if v := getenv("GOENV"); v != "" {
		goenv = GoEnvValue{From: GoFromEnvironment}
		if v != "off" {
			r.UserFile = v
		}
	} else if dir := userConfigDir(getenv); dir != "" {
		r.UserFile = filepath.Join(dir, "go", "env")
	}
	goenv.Value = r.UserFile
	if r.UserFile != "" {
		if !filepath.IsAbs(r.UserFile) {
			return cannot("the go env file %s is relative to where go runs", r.UserFile)
		}
		data, err := readFile(r.UserFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return cannot("reading the go env file: %v", err)
		default:
			user = ParseGoEnvFile(data)
		}
	}

	// GOROOT: the user's file first, as findGOROOT is handed it, then the
	// environment, then the directory go is installed in.
	var root string
	switch {
	case user["GOROOT"].Value != "":
		root = filepath.Clean(user["GOROOT"].Value)
	case getenv("GOROOT") != "":
		root = filepath.Clean(getenv("GOROOT"))
	default:
		if root = goroot(gocmd); root == "" {
			return cannot("no GOROOT holds %s: go uses the one built into it", gocmd)
		}
	}
	if !filepath.IsAbs(root) {
		return cannot("GOROOT %s is relative to where go runs", root)
	}
	r.GOROOTFile = filepath.Join(root, "go.env")
	data, err := readFile(r.GOROOTFile)
	if err != nil {
		// Before Go 1.21 the defaults are compiled in.
		return cannot("reading the toolchain's defaults: %v", err)
	}
	// The go command keeps the first value of a key in go.env.
	defaults := map[string]GoEnvLine{}
	for _, e := range goEnvEntries(data) {
		if _, dup := defaults[e.key]; !dup {
			defaults[e.key] = e.GoEnvLine
		}
	}

	get := func(key string) GoEnvValue {
		if v := getenv(key); v != "" {
			return GoEnvValue{Value: v, From: GoFromEnvironment}
		}
		if u, ok := user[key]; ok {
			return GoEnvValue{Value: u.Value, From: GoFromUserFile, File: r.UserFile, Line: u.Line}
		}
		if d, ok := defaults[key]; ok {
			return GoEnvValue{Value: d.Value, From: GoFromGOROOT, File: r.GOROOTFile, Line: d.Line}
		}
		return GoEnvValue{From: GoDefault}
	}
	r.vars = map[string]GoEnvValue{}
	for _, k := range []string{"GOPROXY", "GOSUMDB", "GOPRIVATE", "GOINSECURE", "GOFLAGS"} {
		r.vars[k] = get(k)
	}
	for _, k := range []string{"GONOPROXY", "GONOSUMDB"} {
		if r.vars[k] = get(k); r.vars[k].Value == "" {
			r.vars[k] = GoEnvValue{Value: r.vars["GOPRIVATE"].Value, From: GoDefault}
		}
	}
	r.vars["GOENV"] = goenv
	switch u := user["GOROOT"]; {
	case getenv("GOROOT") != "":
		// go env prints it as given, even when the user's file chose the
		// go.env read.
		r.vars["GOROOT"] = GoEnvValue{Value: getenv("GOROOT"), From: GoFromEnvironment}
	case u.Value != "":
		r.vars["GOROOT"] = GoEnvValue{Value: root, From: GoFromUserFile, File: r.UserFile, Line: u.Line}
	default:
		r.vars["GOROOT"] = GoEnvValue{Value: root, From: GoDefault}
	}
	r.Answered = true
	return r
}

// userConfigDir is os.UserConfigDir read from getenv; "" where that
// fails, and the go command then reads no user file.
func userConfigDir(getenv func(string) string) string {
	switch runtime.GOOS {
	case "windows":
		return getenv("AppData")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, "Library", "Application Support")
		}
		return ""
	case "plan9":
		if h := getenv("home"); h != "" {
			return filepath.Join(h, "lib")
		}
		return ""
	}
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		if !filepath.IsAbs(dir) {
			return "" // os.UserConfigDir refuses a relative one
		}
		return dir
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config")
	}
	return ""
}

// goroot is the GOROOT a go command installed at gocmd finds for itself,
// as cmd/go's findGOROOT does from os.Executable: bin/go's parent's
// parent (or, for a cross-compiled go, bin/GOOS_GOARCH/go's), once as
// found and once with symbolic links resolved, holding pkg/tool. On Linux
// os.Executable has already resolved them. "" when no such directory
// exists: go then uses the GOROOT built into it, which only it can say.
func goroot(gocmd string) string {
	exe, err := filepath.Abs(gocmd)
	if err != nil {
		return ""
	}
	resolved, rerr := filepath.EvalSymlinks(exe)
	if runtime.GOOS == "linux" || runtime.GOOS == "android" {
		if rerr != nil {
			return ""
		}
		exe = resolved
	}
	try := func(exe string) string {
		for _, up := range []string{"../..", "../../.."} {
			if dir := filepath.Join(exe, up); isGOROOT(dir) {
				return dir
			}
		}
		return ""
	}
	if dir := try(exe); dir != "" {
		return dir
	}
	if rerr == nil {
		return try(resolved)
	}
	return ""
}

// isGOROOT reports whether dir looks like a GOROOT to the go command: it
// has a pkg/tool directory.
func isGOROOT(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, "pkg", "tool"))
	return err == nil && info.IsDir()
}

// maxGoEnvFile bounds a go env file read: they hold a few lines, and a
// path naming a huge file or a device must fail fast.
const maxGoEnvFile = 1 << 20

// ReadGoEnvFile is ResolveGoEnv's default ReadFile: the file at path, if
// it is a regular file of at most 1 MiB. A FIFO or device is refused
// without being opened (it could block), so that a wedged path sends the
// caller to the bounded `go env` rather than hang.
func ReadGoEnvFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if info.Size() > maxGoEnvFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxGoEnvFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxGoEnvFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxGoEnvFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxGoEnvFile)
	}
	return data, nil
}
