package audit

import (
	"fmt"
	"strings"
)

// gitEntry is one variable of a git config file.
type gitEntry struct {
	key      string // section (lower case) [. subsection (as written)] . name (lower case)
	value    string
	hasValue bool // false for a bare "name", which git reads as true
	line     int
}

// parseGitConfig reads a git config file the way git's config.c does:
// [section], [section "subsection"] and the legacy [section.subsection]
// headers; name = value with quotes, backslash escapes, line
// continuations and ; or # comments. It returns the entries before the
// first syntax error and that error; git refuses such a file whole, the
// audit still reports what it could read.
func parseGitConfig(data []byte) ([]gitEntry, error) {
	g := gitParser{data: data, line: 1}
	var out []gitEntry
	section := ""
	for {
		c, ok := g.skipSpace()
		if !ok {
			return out, nil
		}
		switch {
		case c == '#' || c == ';':
			g.skipLine()
		case c == '[':
			s, err := g.header()
			if err != nil {
				return out, err
			}
			section = s
		case isAlpha(c):
			if section == "" {
				return out, g.errorf("variable outside a section")
			}
			e, err := g.variable(section)
			if err != nil {
				return out, err
			}
			out = append(out, e)
		default:
			return out, g.errorf("unexpected %q", c)
		}
	}
}

type gitParser struct {
	data []byte
	pos  int
	line int
}

func (g *gitParser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: bad config line: %s", g.line, fmt.Sprintf(format, args...))
}

func (g *gitParser) peek() (byte, bool) {
	if g.pos >= len(g.data) {
		return 0, false
	}
	return g.data[g.pos], true
}

func (g *gitParser) next() (byte, bool) {
	c, ok := g.peek()
	if ok {
		g.pos++
		if c == '\n' {
			g.line++
		}
	}
	return c, ok
}

// skipSpace skips white space and newlines, returning the next byte.
func (g *gitParser) skipSpace() (byte, bool) {
	for {
		c, ok := g.peek()
		if !ok || !isSpace(c) && c != '\n' {
			return c, ok
		}
		g.next()
	}
}

func (g *gitParser) skipLine() {
	for {
		c, ok := g.next()
		if !ok || c == '\n' {
			return
		}
	}
}

// header reads [section] or [section "subsection"] or [section.sub].
func (g *gitParser) header() (string, error) {
	g.next() // [
	var name strings.Builder
	for {
		if c, ok := g.peek(); !ok || c == '\n' {
			return "", g.errorf("unterminated section header")
		}
		c, _ := g.next()
		switch {
		case c == ']':
			if name.Len() == 0 {
				return "", g.errorf("empty section name")
			}
			if err := g.endOfLine(); err != nil {
				return "", err
			}
			return strings.ToLower(name.String()), nil
		case isSpace(c):
			return g.subsection(strings.ToLower(name.String()))
		case isAlnum(c) || c == '-' || c == '.':
			name.WriteByte(c)
		default:
			return "", g.errorf("bad character %q in section name", c)
		}
	}
}

// subsection reads ` "sub"]` after a section name.
func (g *gitParser) subsection(section string) (string, error) {
	c, ok := g.skipSpace()
	if !ok || c != '"' || section == "" {
		return "", g.errorf("bad section header")
	}
	g.next()
	var sub strings.Builder
	for {
		if c, ok := g.peek(); !ok || c == '\n' {
			return "", g.errorf("unterminated subsection name")
		}
		c, _ := g.next()
		switch {
		case c == '\\':
			if c, ok := g.peek(); !ok || c == '\n' {
				return "", g.errorf("unterminated subsection name")
			}
			c, _ = g.next()
			sub.WriteByte(c)
		case c == '"':
			if c, ok := g.next(); !ok || c != ']' {
				return "", g.errorf("expected ] after subsection name")
			}
			if err := g.endOfLine(); err != nil {
				return "", err
			}
			return section + "." + sub.String(), nil
		default:
			sub.WriteByte(c)
		}
	}
}

// endOfLine accepts only white space or a comment after a header.
func (g *gitParser) endOfLine() error {
	for {
		c, ok := g.peek()
		switch {
		case !ok || c == '\n':
			return nil
		case c == '#' || c == ';':
			g.skipLine()
			return nil
		case isSpace(c):
			g.next()
		default:
			// git allows a variable on the header's line; the caller reads it.
			return nil
		}
	}
}

// variable reads name [= value] up to the end of its (continued) line.
func (g *gitParser) variable(section string) (gitEntry, error) {
	e := gitEntry{line: g.line}
	var name strings.Builder
	for {
		c, ok := g.peek()
		if !ok || !(isAlnum(c) || c == '-') {
			break
		}
		name.WriteByte(c)
		g.next()
	}
	e.key = section + "." + strings.ToLower(name.String())
	for {
		c, ok := g.peek()
		if ok && isSpace(c) {
			g.next()
			continue
		}
		switch {
		case !ok || c == '\n':
			return e, nil
		case c == '#' || c == ';':
			g.skipLine()
			return e, nil
		case c == '=':
			g.next()
			v, err := g.value()
			e.value, e.hasValue = v, true
			return e, err
		default:
			return e, g.errorf("unexpected %q after %s", c, e.key)
		}
	}
}

// value reads a value: quotes group, backslash escapes \n \t \b \" \\,
// a backslash before a newline continues the line, ; and # outside quotes
// start a comment, and white space outside quotes is trimmed at the ends
// (each inner white-space byte becomes a space, as in git).
func (g *gitParser) value() (string, error) {
	var b strings.Builder
	quoted := false
	pending := 0 // white space seen outside quotes, written only if more follows
	started := false
	for {
		if c, ok := g.peek(); !ok || c == '\n' {
			if quoted {
				return b.String(), g.errorf("unterminated quoted value")
			}
			g.next()
			return b.String(), nil
		}
		c, _ := g.next()
		if !quoted && (c == ';' || c == '#') {
			g.skipLine()
			return b.String(), nil
		}
		if !quoted && isSpace(c) {
			if started {
				pending++
			}
			continue
		}
		for ; pending > 0; pending-- {
			b.WriteByte(' ')
		}
		started = true
		switch c {
		case '"':
			quoted = !quoted
		case '\\':
			e, ok := g.next()
			switch {
			case !ok:
				return b.String(), g.errorf("backslash at end of file")
			case e == '\n':
				// continuation: nothing written
			case e == 'n':
				b.WriteByte('\n')
			case e == 't':
				b.WriteByte('\t')
			case e == 'b':
				b.WriteByte('\b')
			case e == '"' || e == '\\':
				b.WriteByte(e)
			default:
				return b.String(), g.errorf("bad escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || '0' <= c && c <= '9' }
