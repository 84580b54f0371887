package fingerprints

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A matcher reports whether one side of a certificate names a product, with the
// field and the value that did. Matchers are built once, at package init.
type matcher func(s side) (f field, value string, ok bool)

// A pred tests one attribute value. All preds ignore case, because products vary
// it between versions ("SonicWALL", "Sonicwall"), and the anchored ones are
// anchored so that a product name inside an unrelated name does not fire
// ("MyFortinetFanClub" is not Fortinet).
type pred func(string) bool

// cn matches the common name.
func cn(ps ...pred) matcher {
	return func(s side) (field, string, bool) {
		f := fieldIssuerCN
		if s.subject {
			f = fieldSubjectCN
		}
		if v := s.name.CommonName; v != "" && anyOf(ps, v) {
			return f, v, true
		}
		return 0, "", false
	}
}

// org matches any organization value.
func org(ps ...pred) matcher {
	return func(s side) (field, string, bool) {
		f := fieldIssuerO
		if s.subject {
			f = fieldSubjectO
		}
		for _, v := range s.name.Organization {
			if anyOf(ps, v) {
				return f, v, true
			}
		}
		return 0, "", false
	}
}

// email matches an emailAddress in the name or, on the subject side, in the SANs.
func email(ps ...pred) matcher {
	return func(s side) (field, string, bool) {
		for _, v := range s.emails {
			if anyOf(ps, v) {
				return fieldEmail, v, true
			}
		}
		return 0, "", false
	}
}

func anyOf(ps []pred, v string) bool {
	for _, p := range ps {
		if p(v) {
			return true
		}
	}
	return false
}

// exact matches the whole value, ignoring case and surrounding spaces.
func exact(s string) pred {
	ls := strings.ToLower(s)
	return func(v string) bool { return strings.ToLower(strings.TrimSpace(v)) == ls }
}

// prefix matches a value that starts with s as a whole word: "Fortinet" matches
// "Fortinet Ltd." and "Fortinet_CA_SSL" but not "FortinetFanClub".
func prefix(s string) pred {
	ls := strings.ToLower(s)
	return func(v string) bool {
		lv := strings.ToLower(strings.TrimLeftFunc(v, unicode.IsSpace))
		return strings.HasPrefix(lv, ls) && rightEdgeOK(ls, lv[len(ls):])
	}
}

// word matches s as a whole word anywhere in the value. Only letters and digits
// make up a word, so "_" and "-" separate words.
func word(s string) pred {
	ls := strings.ToLower(s)
	return func(v string) bool {
		lv := strings.ToLower(v)
		for off := 0; off <= len(lv); {
			i := strings.Index(lv[off:], ls)
			if i < 0 {
				return false
			}
			at := off + i
			if leftEdgeOK(ls, lv[:at]) && rightEdgeOK(ls, lv[at+len(ls):]) {
				return true
			}
			_, size := utf8.DecodeRuneInString(lv[at:])
			off = at + max(size, 1)
		}
		return false
	}
}

// Plain string matching keeps start-up cheap: compiling a regular expression
// per pattern cost milliseconds on every run of the command.

// leftEdgeOK reports whether what precedes a match ends a word, when the
// pattern starts with a word character.
func leftEdgeOK(pattern, before string) bool {
	if r, _ := utf8.DecodeRuneInString(pattern); !isWordRune(r) || before == "" {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(before)
	return !isWordRune(r)
}

// rightEdgeOK reports whether what follows a match starts a new word, when
// the pattern ends with a word character.
func rightEdgeOK(pattern, after string) bool {
	if r, _ := utf8.DecodeLastRuneInString(pattern); !isWordRune(r) || after == "" {
		return true
	}
	r, _ := utf8.DecodeRuneInString(after)
	return !isWordRune(r)
}

// re matches a case-insensitive regular expression; it panics on a bad one, which
// can only happen when the database is built (every test of Identify builds it).
func re(expr string) pred {
	return regexp.MustCompile(`(?i)` + expr).MatchString
}

// except narrows p: it no longer matches values that q matches.
func (p pred) except(q pred) pred {
	return func(v string) bool { return p(v) && !q(v) }
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }
