package audit

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// This file audits how Git over SSH checks host keys: ssh's own
// configuration (~/.ssh/config, /etc/ssh/ssh_config and what they include)
// for the hosts builds clone from, and the ssh command git is told to run
// (GIT_SSH_COMMAND, core.sshCommand). StrictHostKeyChecking no is the SSH
// form of http.sslVerify=false: what people paste when port 22 is blocked
// or a host key changed, and what lets an interceptor answer SSH later.

// gitSSHHosts are the Git hosts whose ssh settings are always judged,
// beside the ones the git configuration names: CI clones from them with
// deploy keys whatever this checkout's remotes say.
var gitSSHHosts = []string{"github.com", "ssh.github.com", "gitlab.com", "bitbucket.org"}

// sshSchemes are the URL schemes git reaches a host over ssh with.
var sshSchemes = []string{"ssh", "git+ssh", "ssh+git"}

// sshHost returns the host of a git URL that goes over ssh:
// ssh://[user@]host[:port]/path (and its git+ssh spellings), or the
// scp-like [user@]host:path git also accepts.
func sshHost(raw, setting, source string) (Host, bool) {
	raw = strings.TrimSpace(raw)
	if i := strings.Index(raw, "://"); i >= 0 {
		if !slices.Contains(sshSchemes, strings.ToLower(raw[:i])) {
			return Host{}, false
		}
		u, err := url.Parse(raw)
		if err != nil {
			return Host{}, false
		}
		port := 22
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return Host{}, false
			}
			port = n
		}
		return sshHostOf(u.Hostname(), port, setting, source)
	}
	// scp-like: [user@]host:path, the host maybe an IPv6 literal in
	// brackets; a colon after a slash is a local path's.
	rest := raw
	if at := strings.IndexByte(raw, '@'); at >= 0 && !strings.ContainsAny(raw[:at], "/:") {
		rest = raw[at+1:]
	}
	var host string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return Host{}, false
		}
		host = rest[1:end]
	} else {
		colon := strings.IndexByte(rest, ':')
		if colon <= 0 || strings.Contains(rest[:colon], "/") {
			return Host{}, false
		}
		host = rest[:colon]
	}
	return sshHostOf(host, 22, setting, source)
}

func sshHostOf(host string, port int, setting, source string) (Host, bool) {
	hs := toolchain.ParseRegistry("https://"+net.JoinHostPort(host, strconv.Itoa(port)), "")
	if len(hs) == 0 {
		return Host{}, false
	}
	return Host{Host: hs[0].Host, Port: port, Scheme: "ssh", Source: setting + " (" + source + ")"}, true
}

// SSHHosts returns the hosts the toolchain reaches over SSH, in the form
// config.WithSSH takes.
func (r Report) SSHHosts() []toolchain.Host {
	var out []toolchain.Host
	for _, h := range r.Hosts {
		if h.Scheme == "ssh" {
			out = append(out, h.Toolchain())
		}
	}
	return out
}

// sshSetting is one value an ssh configuration gives, and where.
type sshSetting struct {
	key, value string
	source     string   // file:line
	hosts      []string // the Host (or Match host) patterns of its block; nil outside any block
	condition  string   // a Match block's criteria this audit cannot evaluate, "" otherwise
}

// sshChecks judges the ssh settings for the hosts builds reach over SSH:
// those parts found in the git configuration, and gitSSHHosts.
func (a *auditor) sshChecks(parts []*part) *part {
	p := &part{}
	hosts := slices.Clone(gitSSHHosts)
	for _, pt := range parts {
		for _, h := range pt.hosts {
			if h.Scheme == "ssh" && !slices.Contains(hosts, h.Host) {
				hosts = append(hosts, h.Host)
			}
		}
	}
	// ssh reads the user's file first; for each keyword the first value
	// obtained wins, so the order of the settings is the order of use.
	var settings []sshSetting
	if a.home != "" {
		dir := filepath.Join(a.home, ".ssh")
		settings = append(settings, a.readSSHConfig(p, filepath.Join(dir, "config"), dir, 0)...)
	}
	settings = append(settings, a.readSSHConfig(p, a.sys("/etc/ssh/ssh_config"), a.sys("/etc/ssh"), 0)...)
	judgeSSHConfig(p, settings, hosts)

	if v := a.env.get("GIT_SSH_COMMAND"); v != "" {
		judgeSSHCommand(p, "GIT_SSH_COMMAND", v, fromEnv)
	}
	return p
}

// maxSSHInclude bounds nested Include directives, as ssh does.
const maxSSHInclude = 16

// readSSHConfig reads an ssh_config file into settings, following Include
// (relative paths are relative to dir, ~/.ssh or /etc/ssh). Only the
// keywords this audit judges are kept.
func (a *auditor) readSSHConfig(p *part, file, dir string, depth int) []sshSetting {
	data, ok := p.load(file)
	if !ok {
		return nil
	}
	var out []sshSetting
	var block []string // patterns of the current Host block
	var condition string
	for i, raw := range strings.Split(string(data), "\n") {
		key, value, ok := splitSSHLine(raw)
		if !ok {
			continue
		}
		switch key {
		case "host":
			block, condition = strings.Fields(value), ""
		case "match":
			block, condition = matchHosts(value)
		case "include":
			if depth >= maxSSHInclude {
				p.warn(fmt.Sprintf("%s: includes nested deeper than %d", at(file, i+1), maxSSHInclude))
				continue
			}
			for _, pattern := range strings.Fields(value) {
				if rest, ok := strings.CutPrefix(pattern, "~/"); ok && a.home != "" {
					pattern = filepath.Join(a.home, rest)
				} else if !filepath.IsAbs(pattern) {
					pattern = filepath.Join(dir, pattern)
				}
				matches, _ := filepath.Glob(pattern)
				for _, m := range matches {
					for _, s := range a.readSSHConfig(p, m, dir, depth+1) {
						// An Include inside a block applies to that block.
						if s.hosts == nil && block != nil {
							s.hosts, s.condition = block, condition
						}
						out = append(out, s)
					}
				}
			}
		case "stricthostkeychecking", "userknownhostsfile":
			out = append(out, sshSetting{key: key, value: value, source: at(file, i+1), hosts: block, condition: condition})
		}
	}
	return out
}

// splitSSHLine reads "Keyword value", "Keyword=value" or "Keyword = value",
// lower-casing the keyword; comments and blank lines give ok false.
func splitSSHLine(line string) (key, value string, ok bool) {
	line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), "", true
	}
	key = strings.ToLower(line[:i])
	value = strings.TrimSpace(line[i:])
	value = strings.TrimSpace(strings.TrimPrefix(value, "="))
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' && !strings.Contains(value[1:len(value)-1], `"`) {
		value = value[1 : len(value)-1]
	}
	return key, value, true
}

// matchHosts reads a Match line's host criteria. "all" matches every host;
// "host" and "originalhost" give patterns; any other criterion is kept as
// a condition this audit does not evaluate.
func matchHosts(value string) (patterns []string, condition string) {
	f := strings.Fields(value)
	var other []string
	for i := 0; i < len(f); i++ {
		switch c := strings.ToLower(f[i]); {
		case c == "all":
			patterns = append(patterns, "*")
		case (c == "host" || c == "originalhost") && i+1 < len(f):
			patterns = append(patterns, strings.Split(f[i+1], ",")...)
			i++
		case c == "canonical" || c == "final":
		default:
			other = append(other, f[i])
		}
	}
	if patterns == nil {
		patterns = []string{"*"}
	}
	return patterns, strings.Join(other, " ")
}

// matchHostPatterns reports whether host matches a Host line's patterns as
// ssh does: any pattern matches and no negated one does.
func matchHostPatterns(patterns []string, host string) bool {
	matched := false
	for _, pat := range patterns {
		neg := strings.HasPrefix(pat, "!")
		ok, _ := path.Match(strings.ToLower(strings.TrimPrefix(pat, "!")), strings.ToLower(host))
		switch {
		case ok && neg:
			return false
		case ok:
			matched = true
		}
	}
	return matched
}

// judgeSSHConfig reports, for each host, the effective value of each
// keyword that weakens host key checking: ssh uses the first one it
// obtains, so a later "StrictHostKeyChecking yes" does not undo an earlier
// "no". A setting in a Match block with conditions this audit cannot
// evaluate is reported as a warning of what may apply.
func judgeSSHConfig(p *part, settings []sshSetting, hosts []string) {
	type key struct{ keyword, source string }
	reported := map[key][]string{}
	var order []key
	var conditional []sshSetting
	for _, keyword := range []string{"stricthostkeychecking", "userknownhostsfile"} {
		for _, h := range hosts {
			for _, s := range settings {
				if s.key != keyword || (s.hosts != nil && !matchHostPatterns(s.hosts, h)) {
					continue
				}
				if s.condition != "" {
					if !slices.ContainsFunc(conditional, func(c sshSetting) bool { return c.source == s.source }) {
						conditional = append(conditional, s)
					}
					continue
				}
				if weakSSHValue(keyword, s.value) {
					k := key{keyword, s.source}
					if _, ok := reported[k]; !ok {
						order = append(order, k)
					}
					reported[k] = append(reported[k], h)
				}
				break // the first value obtained is the one used
			}
		}
	}
	byKey := map[key]sshSetting{}
	for _, s := range settings {
		byKey[key{s.key, s.source}] = s
	}
	for _, k := range order {
		s := byKey[k]
		f := sshFinding(s.key, s.value, s.source, reported[k])
		if s.hosts != nil {
			f.Setting = "Host " + strings.Join(s.hosts, " ") + ": " + f.Setting
		}
		p.add(f)
	}
	for _, s := range conditional {
		if weakSSHValue(s.key, s.value) {
			f := sshFinding(s.key, s.value, s.source, nil)
			f.Severity = detector.Warning
			f.Setting = "Match " + s.condition + ": " + f.Setting
			f.Why = "when its Match conditions (" + s.condition + ") hold: " + f.Why
			p.add(f)
		}
	}
}

// weakSSHValue reports whether a value turns host key checking off or
// makes it trust the first key.
func weakSSHValue(keyword, value string) bool {
	v := strings.ToLower(strings.TrimSpace(value))
	switch keyword {
	case "stricthostkeychecking":
		return v == "no" || v == "off" || v == "accept-new"
	case "userknownhostsfile":
		return slices.ContainsFunc(strings.Fields(v), func(f string) bool { return f == "/dev/null" || f == "none" })
	}
	return false
}

// sshFinding describes one weak setting, for hosts (nil: every host).
func sshFinding(keyword, value, source string, hosts []string) Finding {
	scope := "every host"
	if len(hosts) > 0 {
		scope = strings.Join(hosts, ", ")
	}
	fix := "Remove it, and put the hosts' published keys in ~/.ssh/known_hosts (or a GlobalKnownHostsFile the agents share): for GitHub, the keys it publishes in its documentation and API; if port 22 is blocked, use the host's documented port-443 endpoint (Hostname ssh.github.com, Port 443) rather than turning checking off."
	f := Finding{Tool: "ssh", Value: value, Source: source, Fix: fix}
	switch strings.ToLower(keyword) {
	case "stricthostkeychecking":
		f.Setting = "StrictHostKeyChecking"
		if strings.EqualFold(value, "accept-new") {
			f.Severity = detector.Warning
			f.Why = fmt.Sprintf("ssh trusts whatever host key answers the first connection to %s: on a fresh build agent every connection is the first, so an interceptor's key is accepted and remembered", scope)
		} else {
			f.Severity = detector.Critical
			f.Why = fmt.Sprintf("ssh accepts any host key from %s: whatever answers SSH on the path gets the deploy key's session and everything pushed or fetched", scope)
		}
	default:
		f.Setting = "UserKnownHostsFile"
		f.Severity = detector.Critical
		f.Why = fmt.Sprintf("no host key of %s is ever remembered, so each connection is a first one: with StrictHostKeyChecking no or accept-new any key is taken, and otherwise people learn to answer yes", scope)
	}
	return f
}

// judgeSSHCommand reports the -o options of an ssh command line (what
// GIT_SSH_COMMAND or core.sshCommand runs) that weaken host key checking.
func judgeSSHCommand(p *part, setting, command, source string) {
	for _, opt := range sshOptions(command) {
		key, value, ok := splitSSHLine(opt)
		if !ok || !weakSSHValue(key, value) {
			continue
		}
		f := sshFinding(key, value, source, nil)
		f.Tool, f.Setting = "git", setting+" -o "+f.Setting
		f.Value = command
		f.Fix = "Remove the option from " + setting + ", and put the hosts' published keys in a known_hosts file the command reads (-o UserKnownHostsFile=<that file>); never accept an unchecked key, even to get a build through."
		p.add(f)
	}
}

// sshOptions returns the values of an ssh command line's -o options:
// "-o Key=value", "-oKey=value" and "-o 'Key value'".
func sshOptions(command string) []string {
	words := shellWords(command)
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-o" && i+1 < len(words):
			out = append(out, words[i+1])
			i++
		case strings.HasPrefix(w, "-o") && len(w) > 2:
			out = append(out, w[2:])
		}
	}
	return out
}

// shellWords splits a command line into words the way a POSIX shell would
// for the simple quoting such commands use: single and double quotes and
// backslash escapes.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
