package detector

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the rule for a publicly trusted chain that contradicts
// what a host is expected to present. A public CA can still be the wrong
// one — mis-issued, compromised, an intermediate sold for inspection, a
// "public" store that carries an organisation's CA — so public trust alone
// never clears a chain the pins or the baseline contradict. But CAs rotate,
// so a learned baseline's mismatch alone does not condemn one either:
//
//	pins in rules.yaml, matched by no CA above the leaf      → ca-pin-mismatch (critical: the operator's assertion)
//	a CA with a learned CA's name and another key           → ca-name-cloned (critical)
//	baseline contradicted, chain not publicly trusted       → ca-pin-mismatch (critical)
//	baseline contradicted, chain public, any corroborator   → ca-pin-mismatch (critical), naming the corroboration
//	baseline contradicted, chain public, nothing else       → ca-changed (warning: how to tell rotation from attack)
//
// The corroborators are the findings in Corroborators.

// Corroborators are the findings that, beside a publicly trusted chain the
// learned baseline did not expect, make the change an interception rather
// than a rotation. Each is weak alone; a new CA and one of them together are
// what interceptors leave and rotations do not.
var Corroborators = []Reason{
	ReasonCANameCloned,        // the new CA wears the learned CA's name
	ReasonLeafSignedByRoot,    // public CAs issue from intermediates
	ReasonLeafFresh,           // minted for this connection, where the learned leaf was not
	ReasonLeafWithoutSCT,      // the learned leaf was logged in CT; this one is not
	ReasonLeafKeyReused,       // one key behind other operators' certificates
	ReasonTCPTerminatedNearby, // a relay on the path
	ReasonTLSAnsweredEarly,    // TLS answered before the address
	ReasonRTTSplit,            // a relay by timing
	ReasonCAChangedTogether,   // the same new CA on several operators' hosts at once
}

// pinFindings compares the CAs that sign the chain with the pins and the
// learned baseline.
func pinFindings(st *TLSState, exp Expectation, publicOK bool, now time.Time) []Finding {
	cas := CAs(st)
	if len(cas) == 0 {
		// A chain sent without its intermediate: nothing to compare.
		return nil
	}
	var fs []Finding
	for _, c := range cas {
		if l, ok := clonedName(c, exp.Learned); ok {
			fs = append(fs, Finding{ReasonCANameCloned, Critical, fmt.Sprintf(
				"the CA %s (SPKI %s) carries the name of the CA the baseline learned, but another key (learned SPKI %s): a CA that copies a real issuer's name",
				Describe(c), SPKIOf(c), l.SPKI)})
		}
	}
	switch {
	case len(exp.CASPKI) > 0 && !pinned(st, exp.CASPKI):
		detail := fmt.Sprintf("no CA above the leaf matches the expected pins; the nearest CA, %s, has SPKI %s", Describe(cas[0]), SPKIOf(cas[0]))
		if publicOK {
			detail += "; the public roots trust it, but pins in rules.yaml are the operator's assertion"
		}
		fs = append(fs, Finding{ReasonCAPinMismatch, Critical, detail})
	case len(exp.CASPKI) > 0:
		// The operator's pins vouch for the chain; a baseline learned
		// before a rotation they already follow says nothing more.
	case learnedMismatch(st, exp):
		if !publicOK {
			fs = append(fs, Finding{ReasonCAPinMismatch, Critical, fmt.Sprintf(
				"no CA above the leaf matches the learned baseline; the nearest CA, %s, has SPKI %s", Describe(cas[0]), SPKIOf(cas[0]))})
			break
		}
		fs = append(fs, Finding{ReasonCAChanged, Warning, fmt.Sprintf(
			"no CA above the leaf matches the learned baseline, and the public roots trust the new issuer (%s, SPKI %s): a rotation shows the same new CA from other networks and in the host's Certificate Transparency entries; an interception shows it only here. Until you know, do not treat TLS to this host as verified, and relearn the baseline only once you do",
			Describe(cas[0]), SPKIOf(cas[0]))})
		// What would corroborate an interception, judged for public
		// chains only here, where the baseline already doubts them.
		fs = append(fs, forgeryFindings(st, now, !exp.Learned.LeafFresh)...)
	}
	return fs
}

// forgeryFindings are the marks a forged leaf bears: signed straight by a
// root, and (when fresh counts) minted within the fresh window.
func forgeryFindings(st *TLSState, now time.Time, fresh bool) []Finding {
	leaf := st.Chain[0]
	var fs []Finding
	if signedByRoot(st) {
		signer := "itself"
		if iss := issuerOf(st); iss != nil {
			signer = "a root (" + Describe(iss) + ")"
		}
		fs = append(fs, Finding{ReasonLeafSignedByRoot, Warning,
			fmt.Sprintf("the leaf is signed directly by %s; public CAs issue from intermediates", signer)})
	}
	if age := now.Sub(leaf.NotBefore); fresh && age >= -5*time.Minute && age < freshWindow {
		fs = append(fs, Finding{ReasonLeafFresh, Warning,
			fmt.Sprintf("the leaf became valid %s ago, as if minted for this connection", age.Round(time.Second))})
	}
	return fs
}

// learnedMismatch reports whether a baseline names CAs for the host and
// none of them signs the chain.
func learnedMismatch(st *TLSState, exp Expectation) bool {
	if exp.Learned == nil || len(exp.Learned.CAs) == 0 {
		return false
	}
	return !slices.ContainsFunc(CAs(st), func(c *x509.Certificate) bool {
		k := SPKIOf(c)
		return slices.ContainsFunc(exp.Learned.CAs, func(l LearnedCA) bool { return l.SPKI == k })
	})
}

// clonedName finds the learned CA whose subject c copies with another key.
func clonedName(c *x509.Certificate, l *Learned) (LearnedCA, bool) {
	if l == nil {
		return LearnedCA{}, false
	}
	k, name := SPKIOf(c), c.Subject.String()
	for _, ca := range l.CAs {
		if ca.Subject != "" && ca.Subject == name && ca.SPKI != k &&
			!slices.ContainsFunc(l.CAs, func(o LearnedCA) bool { return o.SPKI == k }) {
			return ca, true
		}
	}
	return LearnedCA{}, false
}

// corroborate turns a publicly trusted CA the baseline did not expect into
// an interception when a corroborating finding stands beside it, naming
// the corroboration; alone it stays a warning.
func corroborate(fs []Finding) []Finding {
	i := slices.IndexFunc(fs, func(f Finding) bool { return f.Reason == ReasonCAChanged })
	if i < 0 {
		return fs
	}
	var by []string
	for _, f := range fs {
		if slices.Contains(Corroborators, f.Reason) && !slices.Contains(by, string(f.Reason)) {
			by = append(by, string(f.Reason))
		}
	}
	if len(by) == 0 {
		return fs
	}
	out := slices.Clone(fs)
	out[i] = Finding{ReasonCAPinMismatch, Critical, fmt.Sprintf(
		"no CA above the leaf matches the learned baseline; the public roots trust the new issuer, but %s stand beside it: an interception, not a rotation (%s)",
		strings.Join(by, ", "), strings.TrimPrefix(fs[i].Detail, "no CA above the leaf matches the learned baseline, and "))}
	return out
}

// acrossTargets are the signals that only show beside the other targets'
// observations.
func acrossTargets(c Case, others []*Case, pol Policy) []Finding {
	var fs []Finding
	if reusedBy := leafKeyReusedBy(&c, others); len(reusedBy) > 0 && !approvedChain(c.Obs.TLS, pol) {
		fs = append(fs, Finding{ReasonLeafKeyReused, Critical,
			fmt.Sprintf("the leaf's public key also signs different certificates for %s: interceptors reuse one key for every forged leaf", strings.Join(reusedBy, ", "))})
	}
	if ca, hosts := changedTogether(c, others); len(hosts) > 0 {
		fs = append(fs, Finding{ReasonCAChangedTogether, Warning, fmt.Sprintf(
			"the same new CA (%s, SPKI %s) replaced the learned CAs of %s at once: a rotation moves one operator's hosts, an interceptor moves them all",
			Describe(ca), SPKIOf(ca), strings.Join(hosts, ", "))})
	}
	return fs
}

// leafKeyReusedBy lists the other hosts that presented a different
// certificate with obs's leaf key. Sharing one certificate across names is
// normal, and so is an operator reusing its own key across its names: for
// a publicly trusted chain only hosts of another registrable domain and
// another organisation count. For a chain the public store rejects any
// other host counts: minting many certificates with one key is what
// forgers do.
func leafKeyReusedBy(c *Case, others []*Case) []string {
	obs := c.Obs
	if obs.TLS == nil || len(obs.TLS.Chain) == 0 {
		return nil
	}
	public := trusted(obs.TLS.Public)
	leaf := obs.TLS.Chain[0]
	var out []string
	for _, oc := range others {
		if oc == nil {
			continue
		}
		o := &oc.Obs
		if o.Host == obs.Host || o.TLS == nil || len(o.TLS.Chain) == 0 {
			continue
		}
		other := o.TLS.Chain[0]
		if !bytes.Equal(other.RawSubjectPublicKeyInfo, leaf.RawSubjectPublicKeyInfo) || bytes.Equal(other.Raw, leaf.Raw) ||
			slices.Contains(out, o.Host) {
			continue
		}
		if public && (registrable(c) == registrable(oc) || sameOrganisation(leaf, other)) {
			continue
		}
		out = append(out, o.Host)
	}
	return out
}

// changedTo is the CA a case's publicly trusted chain moved to, against
// its learned baseline; nil when it did not.
func changedTo(c *Case) *x509.Certificate {
	st := c.Obs.TLS
	if st == nil || len(st.Chain) == 0 || len(c.Expect.CASPKI) > 0 || !trusted(st.Public) || !learnedMismatch(st, c.Expect) {
		return nil
	}
	return CAs(st)[0]
}

// minChangedTogether is how many targets must move to one new CA at once,
// across more than one registrable domain, before it counts.
const minChangedTogether = 3

// changedTogether names the other targets whose chains moved to the same
// new CA as c's, when at least minChangedTogether targets of more than one
// registrable domain did.
func changedTogether(c Case, others []*Case) (*x509.Certificate, []string) {
	ca := changedTo(&c)
	if ca == nil {
		return nil, nil
	}
	key := SPKIOf(ca)
	var hosts []string
	domains := map[string]bool{registrable(&c): true}
	for _, o := range others {
		if o == nil || o.Obs.Host == c.Obs.Host || slices.Contains(hosts, o.Obs.Host) {
			continue
		}
		if oca := changedTo(o); oca != nil && SPKIOf(oca) == key {
			hosts = append(hosts, o.Obs.Host)
			domains[registrable(o)] = true
		}
	}
	if len(hosts)+1 < minChangedTogether || len(domains) < 2 {
		return nil, nil
	}
	return ca, hosts
}

// registrable is the case's registrable domain: Case.Domain, else the
// host's last two labels (the public suffix list needs a library that
// pulls in net/http, so callers look it up).
func registrable(c *Case) string {
	if c.Domain != "" {
		return c.Domain
	}
	host := strings.TrimSuffix(strings.ToLower(c.Obs.Host), ".")
	labels := strings.Split(host, ".")
	if len(labels) <= 2 {
		return host
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// sameOrganisation reports whether two leaves name one organisation: a
// validated O that an interceptor forging for two operators would not
// share.
func sameOrganisation(a, b *x509.Certificate) bool {
	oa, ob := a.Subject.Organization, b.Subject.Organization
	return len(oa) > 0 && len(ob) > 0 && oa[0] == ob[0]
}
