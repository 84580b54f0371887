package toolchain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// npmSource is the Source of npm's built-in default registry.
const npmSource = "npm config get registry"

// The cache of npm's answers: one file in the cache directory, an entry
// per npm binary (a user may switch between several), newest first.
const (
	cacheName       = "npm-registry.json"
	maxCacheEntries = 8
	maxCacheSize    = 64 << 10
)

// npmStamp identifies an npm installation: the binary's resolved path,
// size and modification time, and those of the npmrc npm keeps inside its
// own package (it can set a default too). Another npm, or the same one
// upgraded, has another stamp.
type npmStamp struct {
	Path         string `json:"path"`
	Size         int64  `json:"size"`
	ModTime      int64  `json:"mtime_ns"`
	BuiltinSize  int64  `json:"builtin_size"` // -1: no builtin npmrc
	BuiltinMTime int64  `json:"builtin_mtime_ns"`
}

// npmEntry is what one npm said.
type npmEntry struct {
	npmStamp
	Registry string `json:"registry"`
}

type npmCache struct {
	NPM []npmEntry `json:"npm"`
}

// npmDefault returns the registry npm uses when no setting names one. It
// runs `npm config get registry` once per npm installation and keeps the
// answer in the cache directory, so later runs read a file instead of
// starting Node. npm not installed is no error and no host. A cache that
// cannot be read is ignored and rewritten; one that cannot be written only
// means npm is asked again next time.
func (o Options) npmDefault(ctx context.Context) ([]Host, error) {
	lookPath := o.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	bin, err := lookPath("npm")
	if errors.Is(err, exec.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("toolchain: npm: %w", err)
	}
	file := o.cacheFile()
	stamp, err := stampOf(bin)
	if err != nil {
		file = "" // nothing to key an answer on
	}
	var cache npmCache
	if file != "" {
		cache = readCache(file)
		if r, ok := cache.lookup(stamp); ok {
			return ParseRegistry(r, npmSource), nil
		}
	}
	run := o.Run
	if run == nil {
		run = Exec
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	out, err := run(cctx, bin, "config", "get", "registry")
	cancel()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("toolchain: npm config get registry: %w", err)
	}
	registry := strings.TrimSpace(string(out))
	hosts := ParseRegistry(registry, npmSource)
	if file != "" && len(hosts) > 0 {
		cache.put(stamp, registry)
		if data, err := json.Marshal(cache); err == nil && os.MkdirAll(filepath.Dir(file), 0o755) == nil {
			atomicfile.Write(file, data, 0o644) // a failure costs a run of npm next time, nothing else
		}
	}
	return hosts, nil
}

// cacheFile is where npm's answers are kept; "" when there is nowhere.
func (o Options) cacheFile() string {
	dir := o.CacheDir
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(d, "mitmwatch")
	}
	return filepath.Join(dir, cacheName)
}

// stampOf identifies the npm installation whose command is bin.
func stampOf(bin string) (npmStamp, error) {
	resolved, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return npmStamp{}, err
	}
	resolved, err = filepath.Abs(resolved)
	if err != nil {
		return npmStamp{}, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return npmStamp{}, err
	}
	s := npmStamp{Path: resolved, Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), BuiltinSize: -1}
	// npm's command is bin/npm-cli.js inside its package, whose root may
	// hold the builtin npmrc.
	if b, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(resolved)), "npmrc")); err == nil {
		s.BuiltinSize, s.BuiltinMTime = b.Size(), b.ModTime().UnixNano()
	}
	return s, nil
}

// readCache reads the cache; a missing, unreadable or corrupt one is empty.
func readCache(file string) npmCache {
	var c npmCache
	f, err := os.Open(file)
	if err != nil {
		return c
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCacheSize+1))
	if err != nil || len(data) > maxCacheSize || json.Unmarshal(data, &c) != nil {
		return npmCache{}
	}
	return c
}

func (c npmCache) lookup(s npmStamp) (string, bool) {
	for _, e := range c.NPM {
		if e.npmStamp == s {
			return e.Registry, true
		}
	}
	return "", false
}

// put records npm's answer first, replacing what the same path said before
// and keeping at most maxCacheEntries.
func (c *npmCache) put(s npmStamp, registry string) {
	out := []npmEntry{{s, registry}}
	for _, e := range c.NPM {
		if e.Path != s.Path && len(out) < maxCacheEntries {
			out = append(out, e)
		}
	}
	c.NPM = out
}
