package audit

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
)

// gitSetting is a git variable and where it was set.
type gitSetting struct {
	gitEntry
	source string // file:line, or git's origin ("command line")
}

// gitChecks audits git's configuration: `git config --list --show-origin`
// when git is installed (system, global, local, includes and
// GIT_CONFIG_* alike), else the files read directly.
func (a *auditor) gitChecks(ctx context.Context) *part {
	p := &part{}
	settings, ok := a.gitFromFilesAlone()
	if !ok {
		settings, ok = a.gitFromBinary(ctx, p)
	}
	if !ok {
		settings = a.gitFromFiles(p)
	}
	for _, s := range settings {
		a.judgeGit(p, s)
	}
	if v, ok := a.env.lookup("GIT_SSL_NO_VERIFY"); ok {
		p.add(Finding{Tool: "git", Setting: "GIT_SSL_NO_VERIFY", Value: v, Source: fromEnv, Severity: detector.Critical,
			Why: "git accepts any certificate from every https remote while this is set (whatever its value): a middlebox or an attacker can read and change what is fetched and pushed, credentials included",
			Fix: "Unset it and give git the CA that signs the certificates: GIT_SSL_CAINFO or http.sslCAInfo naming a bundle of the public roots plus your corporate CA."})
	}
	for _, name := range []string{"GIT_SSL_CAINFO", "GIT_SSL_CAPATH"} {
		if v := a.env.get(name); v != "" {
			a.caSetting(p, "git", name, v, fromEnv, name == "GIT_SSL_CAPATH")
		}
	}
	return p
}

// gitFromFilesAlone reads git's settings from its files, without starting
// git (a fork and 3-4 ms of CPU in every check), where that gives what `git
// config --list` gives: git is installed; nothing that only git can
// resolve is in play (includeIf's conditions, %(prefix), per-worktree
// config, settings given in the environment, a repository git would find
// differently or refuse as another user's); the system file, when read,
// is /etc/gitconfig of a distribution's git or one the environment or
// Options.Root names; and every file parses.
// ok is false otherwise, and git is asked.
func (a *auditor) gitFromFilesAlone() (settings []gitSetting, ok bool) {
	if a.lookPath == nil {
		return nil, false // Run stands in for every tool: ask it
	}
	git, err := a.lookPath("git")
	if err != nil {
		return nil, false
	}
	for _, v := range []string{"GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_DIR", "GIT_COMMON_DIR",
		"GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_CONFIG"} {
		if _, set := a.env.lookup(v); set {
			return nil, false
		}
	}
	if a.opts.AllUsers && a.env.get("GIT_CONFIG_NOSYSTEM") == "" && a.env.get("GIT_CONFIG_SYSTEM") == "" && a.opts.Root == "" && !distroGit(git) {
		return nil, false // where the system file is was git's build's choice
	}
	if !plainRepo(a.dir) {
		return nil, false
	}
	var scratch part
	settings = a.gitFromFiles(&scratch)
	if len(scratch.warnings) > 0 {
		return nil, false // git fails on that file, or reads it otherwise
	}
	for _, s := range settings {
		if strings.HasPrefix(s.key, "includeif.") || s.key == "extensions.worktreeconfig" ||
			s.key == "include.path" && strings.HasPrefix(s.value, "%(prefix)") {
			return nil, false
		}
	}
	return settings, true
}

// distroGit reports whether git is a Linux distribution's, built with
// prefix /usr and so reading /etc/gitconfig as its system file, as every
// distribution's is (git's Makefile: sysconfdir is /etc when prefix is
// /usr). A git built elsewhere (/usr/local, Homebrew, Xcode) keeps its own.
func distroGit(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	return err == nil && runtime.GOOS == "linux" && real == "/usr/bin/git"
}

// plainRepo reports whether git finds dir's repository (if any) as gitDir
// does: the nearest .git above it is a directory git accepts, it and its
// work tree owned by this user, on dir's file system, and no directory on the way is a bare
// repository. Anything else (a worktree's or submodule's .git file, a
// stray .git, a mount point crossed) is git's to resolve.
func plainRepo(dir string) bool {
	if !fileOwners {
		return false
	}
	start, err := os.Stat(dir)
	if err != nil {
		return false
	}
	for d := dir; ; {
		if isGitDir(d) {
			return false // a bare repository
		}
		dot := filepath.Join(d, ".git")
		if fi, err := os.Lstat(dot); err == nil {
			top, err := os.Stat(d)
			return err == nil && fi.IsDir() && isGitDir(dot) && sameDevice(start, fi) && ownedByMe(fi) && ownedByMe(top)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return true // no repository: only the user's files
		}
		fi, err := os.Stat(parent)
		if err != nil {
			return false
		}
		if !sameDevice(start, fi) {
			return true // git stops at the file system's edge: no repository
		}
		d = parent
	}
}

// isGitDir is git's test of a repository directory, in short: HEAD, and
// the objects and refs directories.
func isGitDir(d string) bool {
	return isFile(filepath.Join(d, "HEAD")) && isDir(filepath.Join(d, "objects")) && isDir(filepath.Join(d, "refs"))
}

// gitFromBinary asks git. ok is false when git is missing or failed (a
// broken config file makes it fail; the files are then read directly).
func (a *auditor) gitFromBinary(ctx context.Context, p *part) ([]gitSetting, bool) {
	out, err := a.run(ctx, "git", "config", "--list", "--show-origin", "-z")
	if errors.Is(err, exec.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		p.warn(fmt.Sprintf("git config: %v; reading the config files instead", err))
		return nil, false
	}
	files := map[string][]gitEntry{} // parsed once each, to find lines
	seen := map[string]int{}         // occurrences of file+key so far
	// git names the repository's files relative to its top, where it
	// runs, not to the directory it was started in.
	top := a.dir
	if gd := gitDir(a.dir); filepath.Base(gd) == ".git" {
		top = filepath.Dir(gd)
	}
	var out2 []gitSetting
	fields := bytes.Split(out, []byte{0})
	for i := 0; i+1 < len(fields); i += 2 {
		origin, kv := string(fields[i]), string(fields[i+1])
		key, value, hasValue := strings.Cut(kv, "\n")
		s := gitSetting{gitEntry: gitEntry{key: key, value: value, hasValue: hasValue}, source: strings.TrimSuffix(origin, ":")}
		if file, ok := strings.CutPrefix(origin, "file:"); ok {
			if !filepath.IsAbs(file) {
				file = filepath.Join(top, file)
			}
			entries, parsed := files[file]
			if !parsed {
				if data, ok, _ := readFile(file, maxConfigSize); ok {
					entries, _ = parseGitConfig(data)
				}
				files[file] = entries
			}
			n := seen[file+"\x00"+key]
			seen[file+"\x00"+key]++
			s.source = file
			for _, e := range entries {
				if e.key == key {
					if n == 0 {
						s.source = at(file, e.line)
						break
					}
					n--
				}
			}
		}
		out2 = append(out2, s)
	}
	return out2, true
}

// gitFromFiles reads git's config files without git: the system file
// (with AllUsers), the global ones and the repository's, following
// include.path (but not includeIf, whose conditions need git).
func (a *auditor) gitFromFiles(p *part) []gitSetting {
	var files []string
	if a.opts.AllUsers && a.env.get("GIT_CONFIG_NOSYSTEM") == "" {
		files = append(files, cmp.Or(a.env.get("GIT_CONFIG_SYSTEM"), a.sys("/etc/gitconfig")))
	}
	if g := a.env.get("GIT_CONFIG_GLOBAL"); g != "" {
		files = append(files, g)
	} else {
		if a.xdg != "" {
			files = append(files, filepath.Join(a.xdg, "git", "config"))
		}
		if a.home != "" {
			files = append(files, filepath.Join(a.home, ".gitconfig"))
		}
	}
	if local := gitDir(a.dir); local != "" {
		files = append(files, filepath.Join(local, "config"))
	}
	var out []gitSetting
	for _, f := range files {
		out = append(out, a.readGitFile(p, f, 0)...)
	}
	return out
}

// maxIncludeDepth is git's own limit on nested includes.
const maxIncludeDepth = 10

func (a *auditor) readGitFile(p *part, file string, depth int) []gitSetting {
	data, ok := p.load(file)
	if !ok {
		return nil
	}
	entries, err := parseGitConfig(data)
	if err != nil {
		p.warn(fmt.Sprintf("%s: %v", file, err))
	}
	var out []gitSetting
	for _, e := range entries {
		out = append(out, gitSetting{e, at(file, e.line)})
		if e.key == "include.path" && e.value != "" {
			if depth >= maxIncludeDepth {
				p.warn(fmt.Sprintf("%s: includes nested deeper than %d", at(file, e.line), maxIncludeDepth))
				continue
			}
			inc := e.value
			if rest, ok := strings.CutPrefix(inc, "~/"); ok && a.home != "" {
				inc = filepath.Join(a.home, rest)
			} else if !filepath.IsAbs(inc) {
				inc = filepath.Join(filepath.Dir(file), inc)
			}
			out = append(out, a.readGitFile(p, inc, depth+1)...)
		}
	}
	return out
}

// gitDir finds the repository dir holds, as git would: the nearest .git
// directory above it, or the gitdir a .git file points at.
func gitDir(dir string) string {
	for d := dir; d != ""; {
		dot := filepath.Join(d, ".git")
		if isDir(dot) {
			return dot
		}
		if data, ok, _ := readFile(dot, 4096); ok {
			if gd, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:"); ok {
				gd = strings.TrimSpace(gd)
				if !filepath.IsAbs(gd) {
					gd = filepath.Join(d, gd)
				}
				return gd
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
	return ""
}

// splitGitKey splits section.sub.name; sub may hold dots (it is a URL).
func splitGitKey(key string) (section, sub, name string) {
	section, rest, _ := strings.Cut(key, ".")
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		return section, rest[:i], rest[i+1:]
	}
	return section, "", rest
}

// gitFalse reads a git boolean: a bare name is true; "", false, no, off
// and 0 are false.
func gitFalse(e gitEntry) bool {
	if !e.hasValue {
		return false
	}
	v := strings.TrimSpace(e.value)
	if n, err := strconv.Atoi(v); err == nil {
		return n == 0
	}
	return v == "" || falsy(v)
}

// gitName renders a key the way people write it: http.<url>.sslVerify.
func gitName(section, sub, name string) string {
	if sub == "" {
		return section + "." + name
	}
	return section + "." + sub + "." + name
}

func (a *auditor) judgeGit(p *part, s gitSetting) {
	if s.hasValue {
		p.set("git", s.key, s.value, s.source)
	} else {
		p.set("git", s.key, "true", s.source) // a bare name is true
	}
	section, sub, name := splitGitKey(s.key)
	value := redactURLs(s.value)
	switch {
	case section == "http" && name == "sslverify" && gitFalse(s.gitEntry):
		setting, scope := gitName("http", redactURLs(sub), "sslVerify"), "every https remote"
		if sub != "" {
			scope = redactURLs(sub)
		}
		p.add(Finding{Tool: "git", Setting: setting, Value: value, Source: s.source, Severity: detector.Critical,
			Why: fmt.Sprintf("git accepts any certificate from %s: a middlebox or an attacker can read and change what is fetched and pushed, credentials included", scope),
			Fix: fmt.Sprintf("Remove it (%s) and give git the CA that signs the certificates: http.sslCAInfo (or http.<https://host/>.sslCAInfo for one host) naming a bundle of the public roots plus your corporate CA.", gitUnset(s.source, setting))})
	case section == "url" && (name == "insteadof" || name == "pushinsteadof"):
		a.judgeInsteadOf(p, s, sub, name)
	case section == "http" && (name == "sslcainfo" || name == "sslcapath") && s.value != "":
		a.caSetting(p, "git", gitName("http", redactURLs(sub), map[string]string{"sslcainfo": "sslCAInfo", "sslcapath": "sslCAPath"}[name]), s.value, s.source, name == "sslcapath")
	case section == "core" && name == "sshcommand" && s.value != "":
		judgeSSHCommand(p, "core.sshCommand", s.value, s.source)
	case section == "http" && name == "proxy" && s.value != "":
		p.add(proxyFinding("git", gitName("http", redactURLs(sub), "proxy"), s.value, s.source,
			"git sends its http and https traffic through this proxy; if it inspects TLS, git needs the proxy's CA (http.sslCAInfo), never http.sslVerify=false"))
	case section == "remote" && (name == "url" || name == "pushurl"):
		if h, ok := urlHost(s.value, gitName(section, sub, name), s.source); ok {
			p.hosts = append(p.hosts, h)
		}
		if h, ok := sshHost(s.value, gitName(section, sub, name), s.source); ok {
			p.hosts = append(p.hosts, h)
		}
		if plainHTTP(s.value) {
			p.add(Finding{Tool: "git", Setting: gitName(section, sub, name), Value: value, Source: s.source, Severity: detector.Warning,
				Why: "this repository is fetched over plain http: anything on the path can read and alter it, and see the credentials sent",
				Fix: "Use the https URL, with your internal CA installed for git (http.sslCAInfo) if the server's certificate comes from it, or ssh."})
		}
	}
}

// judgeInsteadOf flags rewrites to plain-text URLs; the rewrite's target is
// a host git really uses.
func (a *auditor) judgeInsteadOf(p *part, s gitSetting, base, name string) {
	setting := gitName("url", redactURLs(base), map[string]string{"insteadof": "insteadOf", "pushinsteadof": "pushInsteadOf"}[name])
	if h, ok := urlHost(base, setting, s.source); ok {
		p.hosts = append(p.hosts, h)
	}
	if h, ok := sshHost(base, setting, s.source); ok {
		p.hosts = append(p.hosts, h)
	}
	lb := strings.ToLower(base)
	if !strings.HasPrefix(lb, "http://") && !strings.HasPrefix(lb, "git://") {
		return
	}
	lp := strings.ToLower(strings.TrimSpace(s.value))
	secure := strings.HasPrefix(lp, "https://") || strings.HasPrefix(lp, "ssh://") || strings.HasPrefix(lp, "git@") || strings.HasPrefix(lp, "git+ssh://")
	f := Finding{Tool: "git", Setting: setting, Value: redactURLs(s.value), Source: s.source, Severity: detector.Warning,
		Why: fmt.Sprintf("git fetches %s over plain text: anything on the path can read and alter what is fetched, and see the credentials sent", redactURLs(base)),
		Fix: "Serve the host over https with a certificate from your internal CA, install that CA for git (http.<https://host/>.sslCAInfo) and for Go (the system store), set GOPRIVATE for its modules, and remove the rewrite; an insteadOf to an https URL is fine."}
	if secure {
		f.Severity = detector.Critical
		f.Why = fmt.Sprintf("git silently rewrites %s to %s: fetches that ask for a secure protocol go over plain text instead, where anything on the path can read and alter them and see the credentials; go get follows the rewrite too", redactURLs(s.value), redactURLs(base))
	}
	p.add(f)
}

// proxyFinding reports a proxy setting: information, or a warning when a
// password sits in the URL.
func proxyFinding(tool, setting, value, source, why string) Finding {
	f := Finding{Tool: tool, Setting: setting, Value: redactProxy(value), Source: source, Severity: detector.Info,
		Why: why,
		Fix: "Nothing to undo if the proxy is meant to be there; if it inspects TLS, install its CA for each tool instead of turning verification off."}
	if hasCredentials(value) {
		f.Severity = detector.Warning
		f.Why += "; the proxy's credentials are stored in plain text here"
		f.Fix = "Keep the credentials out of the URL (a credential helper, the tool's own auth setting, or a proxy that authenticates the machine), and rotate the password that was stored."
	}
	return f
}

// gitUnset is the command that removes a setting from where it was read.
func gitUnset(source, key string) string {
	file := source
	if i := strings.LastIndexByte(source, ':'); i > 0 {
		if _, err := strconv.Atoi(source[i+1:]); err == nil {
			file = source[:i]
		}
	}
	if !filepath.IsAbs(file) {
		return "git config --global --unset " + quote(key) + ", or where it is set"
	}
	if strings.ContainsAny(file, " \t'\"") {
		file = quote(file)
	}
	return "git config --file " + file + " --unset " + quote(key)
}
