package audit

import (
	"fmt"
	"strings"
)

// parsePipConf reads a pip.conf or pip.ini the way Python's configparser
// (RawConfigParser, as pip uses it) does: [section] headers; key = value
// or key: value, keys lower-cased; full-line comments starting with # or
// ; (a # later in a line belongs to the value); a line indented deeper
// than its key continues the value (pip splits trusted-host and the index
// lists on white space, so continuation lines add entries), and so do
// blank lines inside it. pip also writes keys with _ for -; they are
// normalised to -.
//
// configparser refuses a file with a key before any section, a duplicate
// section or key, or a line that is none of these, and pip then refuses to
// run. Those are returned as problems; the entries read so far (all of
// them, except after a key before any section) are still returned, so a
// dangerous setting is reported even while the file is broken.
func parsePipConf(data []byte) (entries []iniEntry, problems []string) {
	section := ""
	inSection := false
	cur := -1     // index in entries of the value being continued
	indent := -1  // indentation of the current key line
	blankRun := 0 // blank lines after the current value, kept only if it continues
	seenSections := map[string]bool{}
	seenKeys := map[string]bool{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		stripped := strings.TrimSpace(line)
		if strings.HasPrefix(stripped, "#") || strings.HasPrefix(stripped, ";") {
			continue
		}
		if stripped == "" {
			if cur >= 0 {
				blankRun++
			}
			continue
		}
		lineIndent := len(line) - len(strings.TrimLeft(line, " \t\f\v"))
		if cur >= 0 && lineIndent > indent {
			entries[cur].Value += strings.Repeat("\n", blankRun+1) + stripped
			blankRun = 0
			continue
		}
		blankRun = 0
		indent = lineIndent
		cur = -1
		if strings.HasPrefix(stripped, "[") && strings.LastIndexByte(stripped, ']') > 1 {
			section = stripped[1:strings.LastIndexByte(stripped, ']')]
			inSection = true
			if seenSections[section] {
				problems = append(problems, fmt.Sprintf("line %d: section [%s] already defined", n+1, section))
			}
			seenSections[section] = true
			continue
		}
		if !inSection {
			problems = append(problems, fmt.Sprintf("line %d: key before any [section]; pip cannot read the file", n+1))
			return entries, problems
		}
		i := strings.IndexAny(stripped, "=:")
		if i < 0 {
			problems = append(problems, fmt.Sprintf("line %d: not a section, a key = value or a comment", n+1))
			continue
		}
		key := normalizePipKey(stripped[:i])
		if key == "" {
			problems = append(problems, fmt.Sprintf("line %d: empty key", n+1))
			continue
		}
		if seenKeys[section+"\x00"+key] {
			problems = append(problems, fmt.Sprintf("line %d: %s already set in [%s]", n+1, key, section))
		}
		seenKeys[section+"\x00"+key] = true
		entries = append(entries, iniEntry{Section: section, Key: key, Value: strings.TrimSpace(stripped[i+1:]), Line: n + 1})
		cur = len(entries) - 1
	}
	return entries, problems
}

// normalizePipKey lower-cases a key and writes - for _, as pip does.
func normalizePipKey(k string) string {
	k = strings.ToLower(strings.TrimSpace(k))
	k = strings.TrimPrefix(k, "--")
	return strings.ReplaceAll(k, "_", "-")
}
