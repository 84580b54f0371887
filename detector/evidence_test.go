package detector_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// learnedFrom is the baseline a host learned under these CAs.
func learnedFrom(cas ...*labCA) *detector.Learned {
	l := &detector.Learned{SCT: true}
	for _, c := range cas {
		l.CAs = append(l.CAs, detector.LearnedCA{SPKI: detector.SPKIOf(c.cert), Subject: c.cert.Subject.String()})
	}
	return l
}

// evidenceTable is the rule for a publicly trusted chain that contradicts
// what is expected of its host (README, "How a verdict is reached"): the
// operator's pins decide alone; a learned baseline's mismatch needs a
// corroborating signal, and without one stays a warning.
func evidenceTable(p *labPKI) []judgeCase {
	// A public CA that copies the name of the CA the hosts learned, as an
	// interceptor behind a public-looking root (or a mis-issuing public
	// CA) would.
	// Another root the public store trusts: a second public CA, or an
	// organisation's root in the store that stands in for "public".
	rogueRoot := p.newCA(pkix.Name{CommonName: "Rogue Public Root", Organization: []string{"Rogue Trust"}}, nil)
	p.public.AddCert(rogueRoot.cert)
	p.bareSystem.AddCert(rogueRoot.cert)
	cloned := p.newCA(p.publicCA.cert.Subject, rogueRoot)
	clonedSameRoot := p.newCA(p.publicCA.cert.Subject, p.publicRoot)
	rogue := p.newCA(pkix.Name{CommonName: "Rogue Public Issuing CA", Organization: []string{"Rogue Trust"}}, rogueRoot)
	old := labNow.AddDate(0, 0, -20)
	leaf := func(iss *labCA, host string, s leafSpec) detector.Observation {
		s.names = []string{host}
		if s.notBefore.IsZero() {
			s.notBefore = old
		}
		chain := []*x509.Certificate{p.leaf(iss, s)}
		if iss != nil && iss != p.publicRoot && iss != rogueRoot {
			chain = append(chain, iss.cert)
		}
		return p.observe(host, p.bareSystem, chain...)
	}
	learned := func(obs detector.Observation) detector.Case {
		return detector.Case{Obs: obs, Expect: detector.Expectation{Learned: learnedFrom(p.publicCA, p.publicRoot), SCT: true}}
	}
	pinned := func(obs detector.Observation) detector.Case {
		return detector.Case{Obs: obs, Expect: detector.Expectation{CASPKI: spkis(p.publicCA), SCT: true}}
	}
	withTrace := func(c detector.Case, tr detector.PathTrace) detector.Case {
		c.Obs.Trace = &tr
		return c
	}
	split := detector.PathTrace{ConnectRTTs: msD(0.4, 0.3, 0.5), HelloRTTs: msD(101, 104, 100.5)}
	hops := detector.PathTrace{ConnectRTTs: split.ConnectRTTs, HelloRTTs: split.HelloRTTs, HelloHops: 1, MaxHops: 8}
	shared := p.newKey()

	const (
		ok, intercepted, transparent = detector.OK, detector.Intercepted, detector.TransparentProxy
		changed, pin, cloneR         = detector.ReasonCAChanged, detector.ReasonCAPinMismatch, detector.ReasonCANameCloned
	)
	one := func(name string, c detector.Case, v detector.Verdict, reasons ...detector.Reason) judgeCase {
		return judgeCase{name: name, cases: []detector.Case{c}, want: []judged{{Host: c.Obs.Host, Verdict: v, Reasons: rs(reasons...)}}}
	}
	hostA, hostB, hostC := "proxy.golang.example", "registry.npm.example", "pypi.python.example"
	return []judgeCase{
		one("evidence: learned CA, same chain", learned(leaf(p.publicCA, hostA, leafSpec{sct: true})), ok),
		one("evidence: a rotated CA (new key, new name, public, nothing else) is a warning",
			learned(leaf(rogue, hostA, leafSpec{sct: true})), ok, changed),
		one("evidence: the operator's pins are an assertion: a public chain that misses them is intercepted",
			pinned(leaf(rogue, hostA, leafSpec{sct: true})), intercepted, pin),
		one("evidence: a public CA copying the learned CA's name with another key",
			learned(leaf(cloned, hostA, leafSpec{sct: true})), intercepted, cloneR, pin),
		one("evidence: a public CA copying the learned CA's name under the learned root",
			learned(leaf(clonedSameRoot, hostA, leafSpec{sct: true})), intercepted, cloneR),
		one("evidence: a leaf signed directly by a public root corroborates",
			learned(leaf(rogueRoot, hostA, leafSpec{sct: true})), intercepted, pin, detector.ReasonLeafSignedByRoot),
		one("evidence: a leaf minted minutes ago, where the learned one was not, corroborates",
			learned(leaf(rogue, hostA, leafSpec{sct: true, notBefore: labNow.Add(-3 * time.Minute)})), intercepted, pin, detector.ReasonLeafFresh),
		one("evidence: a host that mints fresh leaves anyway gains nothing from freshness",
			func() detector.Case {
				c := learned(leaf(rogue, hostA, leafSpec{sct: true, notBefore: labNow.Add(-3 * time.Minute)}))
				c.Expect.Learned.LeafFresh = true
				return c
			}(), ok, changed),
		one("evidence: SCTs the baseline had and the leaf lacks corroborate",
			learned(leaf(rogue, hostA, leafSpec{})), intercepted, pin, detector.ReasonLeafWithoutSCT),
		one("evidence: a relay found on the path corroborates: intercepted, not transparent-proxy",
			withTrace(learned(leaf(rogue, hostA, leafSpec{sct: true})), hops), intercepted, pin, detector.ReasonTCPTerminatedNearby),
		one("evidence: a relay with the learned chain is a transparent proxy",
			withTrace(learned(leaf(p.publicCA, hostA, leafSpec{sct: true})), hops), transparent, detector.ReasonTCPTerminatedNearby),
		one("evidence: timing alone sets no verdict on the learned chain",
			withTrace(learned(leaf(p.publicCA, hostA, leafSpec{sct: true})), split), ok, detector.ReasonRTTSplit),
		{
			name: "evidence: the same new CA on three operators' hosts at once",
			cases: []detector.Case{learned(leaf(rogue, hostA, leafSpec{sct: true})), learned(leaf(rogue, hostB, leafSpec{sct: true})),
				learned(leaf(rogue, hostC, leafSpec{sct: true}))},
			want: []judged{
				{Host: hostA, Verdict: intercepted, Reasons: rs(pin, detector.ReasonCAChangedTogether)},
				{Host: hostB, Verdict: intercepted, Reasons: rs(pin, detector.ReasonCAChangedTogether)},
				{Host: hostC, Verdict: intercepted, Reasons: rs(pin, detector.ReasonCAChangedTogether)},
			},
		},
		{
			name: "evidence: one operator's hosts moving to a new CA together is a rotation",
			cases: []detector.Case{learned(leaf(rogue, "a."+hostA, leafSpec{sct: true})), learned(leaf(rogue, "b."+hostA, leafSpec{sct: true})),
				learned(leaf(rogue, "c."+hostA, leafSpec{sct: true}))},
			want: []judged{
				{Host: "a." + hostA, Verdict: ok, Reasons: rs(changed)},
				{Host: "b." + hostA, Verdict: ok, Reasons: rs(changed)},
				{Host: "c." + hostA, Verdict: ok, Reasons: rs(changed)},
			},
		},
		{
			name: "evidence: without a baseline, one leaf key behind public certificates of two operators",
			cases: []detector.Case{
				{Obs: leaf(p.publicCA, hostA, leafSpec{sct: true, key: shared})},
				{Obs: leaf(p.publicCA, hostB, leafSpec{sct: true, key: shared})},
			},
			want: []judged{
				{Host: hostA, Verdict: intercepted, Reasons: rs(detector.ReasonLeafKeyReused)},
				{Host: hostB, Verdict: intercepted, Reasons: rs(detector.ReasonLeafKeyReused)},
			},
		},
		{
			name: "evidence: one operator sharing a key across its own names is normal",
			cases: []detector.Case{
				{Obs: leaf(p.publicCA, "a."+hostA, leafSpec{sct: true, key: shared})},
				{Obs: leaf(p.publicCA, "b."+hostA, leafSpec{sct: true, key: shared})},
			},
			want: []judged{{Host: "a." + hostA, Verdict: ok}, {Host: "b." + hostA, Verdict: ok}},
		},
	}
}

func TestEvidence(t *testing.T) {
	t.Parallel()
	runJudgeTable(t, evidenceTable(newLabPKI(t)))
}

// The corroborated finding names its corroboration; the warning says how
// to tell a rotation from an attack and never that integrity holds.
func TestEvidenceDetails(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	for _, c := range evidenceTable(p) {
		for _, r := range detector.Judge(c.cases, c.pol, labNow) {
			for _, f := range r.Findings {
				switch {
				case f.Reason == detector.ReasonCAChanged:
					if !strings.Contains(f.Detail, "Certificate Transparency") || !strings.Contains(r.Remediation, "another network") {
						t.Errorf("%s: ca-changed does not say how to tell rotation from attack: %q / %q", c.name, f.Detail, r.Remediation)
					}
				case f.Reason == detector.ReasonCAPinMismatch && strings.Contains(f.Detail, "learned baseline; the public roots trust"):
					named := slices.ContainsFunc(detector.Corroborators, func(cr detector.Reason) bool { return strings.Contains(f.Detail, string(cr)) })
					if !named {
						t.Errorf("%s: corroborated mismatch names no corroboration: %q", c.name, f.Detail)
					}
				}
			}
			if r.Verdict == detector.OK && strings.Contains(r.Remediation, "integrity holds") {
				t.Errorf("%s: %s: ok reassures: %q", c.name, r.Obs.Host, r.Remediation)
			}
			if r.Verdict == detector.TransparentProxy && !strings.Contains(r.Remediation, "integrity holds") {
				t.Errorf("%s: the learned chain behind a relay is genuine: %q", c.name, r.Remediation)
			}
		}
	}
}
