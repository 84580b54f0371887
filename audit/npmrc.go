package audit

import (
	"encoding/json"
	"fmt"
	"strings"
)

// iniEntry is one key of an .npmrc or pip.conf.
type iniEntry struct {
	Section string // "" before any [section]
	Key     string
	Value   string
	Line    int // where the key is, 1-based
}

// parseNpmrc reads an .npmrc the way npm does (its ini reader, then
// ${VAR} expansion): one key=value a line; lines starting with ; or # are
// comments; a [section] line opens a section (npm ignores keys in one);
// a key without = is true; a value in double quotes is a JSON string,
// one in single quotes is taken literally, and an unquoted value ends at
// an unescaped ; or #. ${NAME} and ${NAME?} in keys and values are
// replaced from getenv; an unset NAME stays as written (empty with ?).
// Lines npm would skip are returned as problems.
func parseNpmrc(data []byte, getenv func(string) string) (entries []iniEntry, problems []string) {
	section := ""
	for n, phys := range strings.Split(string(data), "\n") {
		// npm splits on runs of \r and \n; a lone \r also ends a line.
		for _, line := range strings.Split(phys, "\r") {
			trimmed := strings.TrimSpace(line)
			if trimmed == "" || trimmed[0] == ';' || trimmed[0] == '#' {
				continue
			}
			if strings.HasPrefix(line, "[") && strings.HasSuffix(strings.TrimRight(line, " \t\f\v"), "]") && !strings.Contains(line[1:strings.LastIndexByte(line, ']')], "]") {
				section = line[1:strings.LastIndexByte(line, ']')]
				continue
			}
			rawKey, rawVal, hasVal := strings.Cut(line, "=")
			if rawKey == "" {
				problems = append(problems, fmt.Sprintf("line %d: no key before =", n+1))
				continue
			}
			key := expandEnv(iniUnsafe(rawKey), getenv)
			key = strings.TrimSuffix(key, "[]")
			if key == "" {
				problems = append(problems, fmt.Sprintf("line %d: empty key", n+1))
				continue
			}
			value := "true"
			if hasVal {
				value = expandEnv(iniUnsafe(rawVal), getenv)
			}
			entries = append(entries, iniEntry{Section: section, Key: key, Value: value, Line: n + 1})
		}
	}
	return entries, problems
}

// iniUnsafe decodes a key or value as npm's ini reader does.
func iniUnsafe(v string) string {
	v = strings.TrimSpace(v)
	if v != "" && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		if v[0] == '\'' {
			if len(v) == 1 {
				return ""
			}
			v = v[1 : len(v)-1]
		}
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			return s
		}
		return v
	}
	var b strings.Builder
	esc := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case esc:
			if c != '\\' && c != ';' && c != '#' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
			esc = false
		case c == ';' || c == '#':
			return strings.TrimSpace(b.String())
		case c == '\\':
			esc = true
		default:
			b.WriteByte(c)
		}
	}
	if esc {
		b.WriteByte('\\')
	}
	return strings.TrimSpace(b.String())
}

// expandEnv replaces ${NAME} and ${NAME?} as npm does. A backslash before
// the $ escapes it (pairs of backslashes halve).
func expandEnv(s string, getenv func(string) string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i
		end := strings.IndexByte(s[j+2:], '}')
		name := ""
		if end >= 0 {
			name = s[j+2 : j+2+end]
		}
		optional := strings.HasSuffix(name, "?")
		name = strings.TrimSuffix(name, "?")
		if end < 0 || name == "" || strings.ContainsAny(name, "${}?") {
			b.WriteString(s[i : j+2])
			i = j + 2
			continue
		}
		// Backslashes right before the $.
		k := j
		for k > i && s[k-1] == '\\' {
			k--
		}
		esc := j - k
		b.WriteString(s[i:k])
		orig := s[j : j+2+end+1]
		if esc%2 == 1 {
			b.WriteString(strings.Repeat(`\`, esc/2))
			b.WriteString(orig)
		} else {
			b.WriteString(strings.Repeat(`\`, esc/2))
			if v := getenv(name); v != "" {
				b.WriteString(v)
			} else if !optional {
				b.WriteString("${" + name + "}")
			}
		}
		i = j + 2 + end + 1
	}
	return b.String()
}
