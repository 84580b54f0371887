package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mitmwatch/mitmwatch"
)

// Where Locate looks, after the -config flag.
const (
	EnvVar       = "MITMWATCH_CONFIG"
	SystemPath   = "/etc/mitmwatch/rules.yaml"
	EmbeddedName = "embedded default" // the name of the built-in rules
)

// LocateOptions are the seams Locate reads the outside world through; the
// zero value uses the real environment and file system.
type LocateOptions struct {
	Getenv func(string) string // default os.Getenv
	// ReadFile reads a candidate; an error matching fs.ErrNotExist means
	// "not there, look further". Default os.ReadFile.
	ReadFile      func(string) ([]byte, error)
	UserConfigDir func() (string, error) // default os.UserConfigDir
}

// Locate finds the rules to use: the -config flag value, then $MITMWATCH_CONFIG,
// then SystemPath, then mitmwatch/rules.yaml in the user config dir, then the
// embedded default. A file named by the flag or the variable must exist; the
// two well-known paths are skipped when absent. Any other read error stops
// the search, so a file that exists but is unreadable is never passed over
// for a weaker one. The returned name is for Parse.
func Locate(flagPath string, opts LocateOptions) (name string, data []byte, err error) {
	getenv, readFile, userDir := opts.Getenv, opts.ReadFile, opts.UserConfigDir
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if userDir == nil {
		userDir = os.UserConfigDir
	}

	for _, explicit := range []struct{ path, how string }{
		{flagPath, "-config flag"},
		{getenv(EnvVar), "$" + EnvVar},
	} {
		if explicit.path == "" {
			continue
		}
		data, err := readFile(explicit.path)
		if err != nil {
			return "", nil, fmt.Errorf("config named by %s: %w", explicit.how, err)
		}
		return explicit.path, data, nil
	}

	candidates := []string{SystemPath}
	if dir, err := userDir(); err == nil && dir != "" {
		candidates = append(candidates, filepath.Join(dir, "mitmwatch", "rules.yaml"))
	}
	for _, path := range candidates {
		data, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("config: %w", err)
		}
		return path, data, nil
	}
	return EmbeddedName, mitmwatch.DefaultRules, nil
}
