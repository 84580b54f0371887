package tools

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Step is one change of a fix, as data, so that a person can read it and a
// script (or a test) can apply it: exactly one field is set.
type Step struct {
	Env    string   // NAME=value to set in the tool's environment
	Unset  string   // a variable to remove from it
	Argv   []string // a command to run
	Shell  string   // a shell command line, when a pipe or && is needed
	Manual string   // what a person has to do by hand
}

// String renders the step as a person would type or do it.
func (s Step) String() string {
	switch {
	case s.Env != "":
		name, value, _ := strings.Cut(s.Env, "=")
		return "export " + name + "=" + shellQuote(value)
	case s.Unset != "":
		return "unset " + s.Unset
	case s.Argv != nil:
		q := make([]string, len(s.Argv))
		for i, a := range s.Argv {
			q[i] = shellQuote(a)
		}
		return strings.Join(q, " ")
	case s.Shell != "":
		return s.Shell
	}
	return s.Manual
}

// render joins a fix's sentence and its steps.
func render(why string, steps []Step) string {
	if len(steps) == 0 {
		return why
	}
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = s.String()
	}
	return why + ": " + strings.Join(parts, "; then ")
}

// lowerFirst lower-cases the first letter of a sentence that follows
// another, unless it starts with a name (GIT_SSL_CAINFO, Node).
func lowerFirst(s string) string {
	if len(s) > 1 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'a' && s[1] <= 'z' && !strings.HasPrefix(s, "Node") {
		return strings.ToLower(s[:1]) + s[1:]
	}
	return s
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// caFile is the file fixes install the CA from, and, when --write-ca was
// not given, the step that writes it.
func caFile(c Context) (string, []Step) {
	if c.CAFile != "" {
		return c.CAFile, nil
	}
	return DefaultCAFile, []Step{{Argv: []string{"mitmwatch", "check", "--write-ca", DefaultCAFile}}}
}

// fixFor is the fix for a tool that refuses the chain for prob.
func fixFor(t Tool, h Host, store Store, prob problem, r detector.Result, c Context) (string, []Step, *x509.Certificate) {
	st := r.Obs.TLS
	switch prob {
	case badStore:
		return fmt.Sprintf("%s cannot load %s: point it at a bundle that exists and holds the roots it needs (the public roots, and your organisation's CA if it inspects TLS)", t.Name, store.By), nil, nil
	case expired, notYetValid:
		if detector.HasClockSkew(r.Findings) {
			return "This machine's clock is wrong (see clock-skew): set it, and " + string(t.Name) + " will verify; changing its trust settings would not help",
				[]Step{{Argv: []string{"timedatectl", "set-ntp", "true"}}}, nil
		}
		from, until, _ := detector.ValidityOf(st.Chain)
		when := "expired on " + until.UTC().Format("2006-01-02")
		if prob == notYetValid {
			when = "is valid only from " + from.UTC().Format("2006-01-02")
		}
		return fmt.Sprintf("The certificate of %s %s: its operator must replace it; no setting of %s should change for it", h.Host, when, t.Name), nil, nil
	case otherName:
		return fmt.Sprintf("The certificate is for %s, not %s: use a name it is valid for, or have %s given a certificate that names it (see the verdict); do not turn verification off",
			strings.Join(detector.Names(st.Chain[0]), ", "), h.Host, h.Host), nil, nil
	}
	ca, kind := installable(st, c)
	if ca == nil {
		return fmt.Sprintf("Nothing on this machine vouches for the CA that signs this chain (%s): do not install it or turn verification off; find out who presents it (verdict: %s)",
			detector.Describe(detector.Root(st)), r.Verdict), nil, nil
	}
	why, steps := caSteps(t, h, store, c, systemTrusts(st))
	if pre := caveat(ca, kind); pre != "" {
		why = pre + lowerFirst(why)
	}
	return why, steps, ca
}

// caveat is what a fix says before installing a CA the organisation has
// not approved in rules.yaml.
func caveat(ca *x509.Certificate, kind trustKind) string {
	if kind != systemCA {
		return ""
	}
	return fmt.Sprintf("If %s (SPKI %s) is your organisation's inspection CA (approve it in allow.inspection_ca_spki_sha256; the system store already trusts it), ",
		detector.Describe(ca), detector.SPKIOf(ca))
}

// systemTrusts reports whether the system store vouches for the chain (at a
// moment it is valid): its bundle then holds the CA.
func systemTrusts(st *detector.TLSState) bool {
	v := st.System
	if v.Failure == detector.FailureExpired && v.AtValidTime != nil {
		v = *v.AtValidTime
	}
	return v.OK()
}

// caSteps gives the tool the CA the way its configuration allows, keeping
// every root it already trusts. inSystem says the system bundle holds the
// CA, so that tools whose setting replaces their store can be pointed at it.
func caSteps(t Tool, h Host, store Store, c Context, inSystem bool) (string, []Step) {
	file, steps := caFile(c)
	// bundle is a file with the tool's roots and the CA, for the tools
	// whose setting replaces their store.
	bundle := func() string {
		if inSystem && c.SystemBundle != "" {
			return c.SystemBundle
		}
		out := strings.TrimSuffix(file, filepath.Ext(file)) + "-" + string(t.Name) + "-bundle.pem"
		var src []string
		for _, f := range store.Files {
			src = append(src, shellQuote(f))
		}
		steps = append(steps, Step{Shell: "cat " + strings.Join(append(src, shellQuote(file)), " ") + " > " + shellQuote(out)})
		return out
	}
	by := ""
	if store.By != nil {
		by = store.By.Name
	}
	switch t.Name {
	case Go, Cargo:
		if by != "" {
			return fmt.Sprintf("Give %s the CA through %s", t.Name, by), append(steps, Step{Env: by + "=" + bundle()})
		}
		return fmt.Sprintf("Install the CA in the system store, which %s uses", t.Name), append(steps, Step{Shell: fmt.Sprintf(c.SystemInstall, shellQuote(file))})
	case Docker:
		dir := "/etc/docker/certs.d/" + h.Host
		if h.Port != 443 {
			dir += fmt.Sprintf(":%d", h.Port)
		}
		return "Give dockerd the CA for this registry (read at each pull, no restart)", append(steps,
			Step{Shell: fmt.Sprintf("mkdir -p %s && cp %s %s/ca.crt", shellQuote(dir), shellQuote(file), shellQuote(dir))})
	case Git:
		if by == "GIT_SSL_CAINFO" {
			return "GIT_SSL_CAINFO overrides git's config: give it a bundle with the CA", append(steps, Step{Env: "GIT_SSL_CAINFO=" + bundle()})
		}
		return "Give git the CA for this host only", append(steps,
			Step{Argv: []string{"git", "config", "--global", "http." + h.URL() + ".sslCAInfo", file}})
	case NPM:
		switch by {
		case "cafile", "ca":
			return "npm's " + by + " replaces Node's roots: point cafile at a bundle with the CA", append(steps,
				Step{Argv: []string{"npm", "config", "set", "cafile", bundle()}})
		case "NODE_EXTRA_CA_CERTS":
			return "Node reads one NODE_EXTRA_CA_CERTS file: add the CA to it", append(steps, Step{Env: "NODE_EXTRA_CA_CERTS=" + bundle()})
		}
		return "Add the CA to Node's roots (npm, and every script it runs)", append(steps, Step{Env: "NODE_EXTRA_CA_CERTS=" + file})
	case Pip:
		switch by {
		case "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT":
			return by + " replaces pip's roots: point it at a bundle with the CA", append(steps, Step{Env: by + "=" + bundle()})
		}
		return "Point pip at a bundle with the CA (cert replaces pip's roots)", append(steps,
			Step{Argv: []string{"pip", "config", "set", "global.cert", bundle()}})
	}
	return "Give " + string(t.Name) + " the CA", steps
}

// offFix removes what turned verification off, and gives the tool the CA
// when its store would refuse the chain without it.
func offFix(t Tool, h Host, store Store, off *Setting, prob problem, r detector.Result, c Context) (string, []Step, *x509.Certificate) {
	steps := []Step{removal(t, off)}
	why := fmt.Sprintf("%s accepts any certificate from %s while %s is set; remove it", t.Name, h.Host, off)
	if prob == noProblem {
		return fmt.Sprintf("%s accepts any certificate from %s while %s is set. The chain verifies against %s without it, so removing it is all", t.Name, h.Host, off, store.Description), steps, nil
	}
	more, moreSteps, ca := fixFor(t, h, store, prob, r, c)
	return why + ", and " + lowerFirst(more), append(steps, moreSteps...), ca
}

// removal is the step that undoes a setting.
func removal(t Tool, s *Setting) Step {
	if s.Source == "environment" {
		return Step{Unset: s.Name}
	}
	if t.Name == Go && s.Name == "GOINSECURE" {
		return Step{Argv: []string{"go", "env", "-u", "GOINSECURE"}}
	}
	return Step{Manual: fmt.Sprintf("remove %s from %s", s.Name, s.Source)}
}

// internalCAFile names the certificate of the organisation's own CA in the
// fixes that serve a host over https instead of plain HTTP.
const internalCAFile = "internal-ca.pem"

// plainHTTP is the prediction for a tool that fetches from h without TLS:
// configured so (an http:// URL, GOINSECURE's fallback), or because the
// host's TLS port answers plain HTTP. msg is the tool's refusal; nil when
// it carries on in clear text.
func plainHTTP(p Prediction, t Tool, h Host, store Store, msg *string, off *Setting, c Context) Prediction {
	p.Outcome = PlainHTTP
	if msg != nil {
		p.Error = *msg
		if t.Name == Go && strings.HasPrefix(h.Source, "GOPRIVATE") {
			// A module host the go command fetches directly: it tries
			// each secure scheme and gives up.
			p.Error = "no secure protocol found for repository"
		}
	}
	steps := []Step{{Manual: fmt.Sprintf("issue %s a certificate from your internal CA (its certificate saved as %s) and serve it over https", h.Host, internalCAFile)}}
	_, more := caSteps(t, h, store, Context{CAFile: internalCAFile, SystemInstall: c.SystemInstall}, false)
	steps = append(steps, more...)
	if h.Scheme == "http" {
		steps = append(steps, Step{Manual: fmt.Sprintf("write %s as https:// in %s", h.Host, h.Source)})
	}
	if off != nil {
		steps = append(steps, removal(t, off))
	}
	why := fmt.Sprintf("Serve %s over https with a certificate from an internal CA, instead of plain HTTP", h.Host)
	if t.Name == Go {
		why += " and GOINSECURE"
	}
	p.Fix, p.Steps = render(why, steps), steps
	return p
}
