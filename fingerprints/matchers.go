package fingerprints

import (
	"regexp"
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
	return re(`^\s*` + regexp.QuoteMeta(s) + `\s*$`)
}

// prefix matches a value that starts with s as a whole word: "Fortinet" matches
// "Fortinet Ltd." and "Fortinet_CA_SSL" but not "FortinetFanClub".
func prefix(s string) pred {
	return re(`^\s*` + regexp.QuoteMeta(s) + rightEdge(s))
}

// word matches s as a whole word anywhere in the value. Only letters and digits
// make up a word, so "_" and "-" separate words.
func word(s string) pred {
	return re(leftEdge(s) + regexp.QuoteMeta(s) + rightEdge(s))
}

// re matches a case-insensitive regular expression; it panics on a bad one, which
// can only happen at package init.
func re(expr string) pred {
	return regexp.MustCompile(`(?i)` + expr).MatchString
}

// except narrows p: it no longer matches values that q matches.
func (p pred) except(q pred) pred {
	return func(v string) bool { return p(v) && !q(v) }
}

const notWordChar = `[^\pL\pN]`

func leftEdge(s string) string {
	if r, _ := utf8.DecodeRuneInString(s); isWordRune(r) {
		return `(?:^|` + notWordChar + `)`
	}
	return ``
}

func rightEdge(s string) string {
	if r, _ := utf8.DecodeLastRuneInString(s); isWordRune(r) {
		return `(?:$|` + notWordChar + `)`
	}
	return ``
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }
