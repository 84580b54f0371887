package detector_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/trust"
)

// labHost3 is a third host, so that a wrong clock shows across hosts of
// more than one operator.
const labHost3 = "index.lab.example"

// observeAt is observe with verification done by trust.Verify at the given
// clock, as the probe does: a chain outside its validity then carries its
// verification at a moment inside it (AtValidTime).
func (p *labPKI) observeAt(host string, system *x509.CertPool, at time.Time, chain ...*x509.Certificate) detector.Observation {
	o := p.observe(host, system, chain...)
	o.TLS.Public = trust.Verify(chain, p.public, at)
	o.TLS.System = trust.Verify(chain, system, at)
	return o
}

// clockTable holds the situations a wrong clock explains, and those it
// does not, judged at labNow like the other tables: the certificates are
// made two years earlier (or later) than labNow, which is what a clock two
// years ahead (or behind) sees.
func clockTable(p *labPKI) []judgeCase {
	past := func(host string) *x509.Certificate {
		return p.leaf(p.publicCA, leafSpec{names: []string{host}, sct: true,
			notBefore: labNow.AddDate(-2, 0, -30), notAfter: labNow.AddDate(-2, 0, 60)})
	}
	future := func(host string) *x509.Certificate {
		return p.leaf(p.publicCA, leafSpec{names: []string{host}, sct: true,
			notBefore: labNow.AddDate(2, 0, -30), notAfter: labNow.AddDate(2, 0, 60)})
	}
	forgedPast := p.leaf(p.corpCA, leafSpec{names: []string{labHost3},
		notBefore: labNow.AddDate(-2, 0, 0), notAfter: labNow.AddDate(-2, 0, 30)})
	unknownPast := p.leaf(p.newCA(pkix.Name{CommonName: "Nobody's Root"}, nil), leafSpec{names: []string{labHost3},
		notBefore: labNow.AddDate(-2, 0, 0), notAfter: labNow.AddDate(-2, 0, 30)})
	current := p.leaf(p.publicCA, leafSpec{names: []string{labHost3}, sct: true})
	skew := detector.ReasonClockSkew
	at := func(host string, system *x509.CertPool, chain ...*x509.Certificate) detector.Case {
		return detector.Case{Obs: p.observeAt(host, system, labNow, chain...)}
	}
	return []judgeCase{
		{
			name: "a clock two years ahead: every sound chain looks expired",
			cases: []detector.Case{
				at(labHost, p.system, past(labHost), p.publicCA.cert),
				at(labHost2, p.system, past(labHost2), p.publicCA.cert),
				at(labHost3, p.system, past(labHost3), p.publicCA.cert),
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(skew)},
				{Host: labHost2, Verdict: detector.InvalidCert, Reasons: rs(skew)},
				{Host: labHost3, Verdict: detector.InvalidCert, Reasons: rs(skew)},
			},
		},
		{
			name: "a clock two years behind: every sound chain looks not yet valid",
			cases: []detector.Case{
				at(labHost, p.system, future(labHost), p.publicCA.cert),
				at(labHost2, p.system, future(labHost2), p.publicCA.cert),
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(skew)},
				{Host: labHost2, Verdict: detector.InvalidCert, Reasons: rs(skew)},
			},
		},
		{
			name: "a wrong clock does not hide an interception root in the system store",
			cases: []detector.Case{
				at(labHost, p.system, past(labHost), p.publicCA.cert),
				at(labHost2, p.system, past(labHost2), p.publicCA.cert),
				at(labHost3, p.system, forgedPast, p.corpCA.cert),
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(skew)},
				{Host: labHost2, Verdict: detector.InvalidCert, Reasons: rs(skew)},
				{Host: labHost3, Verdict: detector.Intercepted, Reasons: rs(skew, detector.ReasonSystemRootOnly, detector.ReasonLeafWithoutSCT)},
			},
		},
		{
			name: "a wrong clock does not vouch for a chain nobody trusts",
			cases: []detector.Case{
				at(labHost, p.system, past(labHost), p.publicCA.cert),
				at(labHost2, p.system, past(labHost2), p.publicCA.cert),
				at(labHost3, p.system, unknownPast),
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(skew)},
				{Host: labHost2, Verdict: detector.InvalidCert, Reasons: rs(skew)},
				{Host: labHost3, Verdict: detector.InvalidCert, Reasons: rs(skew, detector.ReasonLeafWithoutSCT, detector.ReasonUntrustedChain)},
			},
		},
		{
			name: "one expired chain alone says nothing about the clock",
			cases: []detector.Case{
				at(labHost, p.system, past(labHost), p.publicCA.cert),
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonCertInvalid)},
			},
		},
		{
			name: "expired chains beside one valid now are expired, not a wrong clock",
			cases: []detector.Case{
				at(labHost, p.system, past(labHost), p.publicCA.cert),
				at(labHost2, p.system, past(labHost2), p.publicCA.cert),
				at(labHost3, p.system, current, p.publicCA.cert),
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonCertInvalid)},
				{Host: labHost2, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonCertInvalid)},
				{Host: labHost3, Verdict: detector.OK},
			},
		},
		{
			name: "chains on both sides of the clock are not one wrong clock",
			cases: []detector.Case{
				at(labHost, p.system, past(labHost), p.publicCA.cert),
				at(labHost2, p.system, future(labHost2), p.publicCA.cert),
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonCertInvalid)},
				{Host: labHost2, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonCertInvalid)},
			},
		},
	}
}

func TestClockSkew(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	for _, c := range clockTable(p) {
		t.Run(c.name, func(t *testing.T) {
			var got []judged
			for _, r := range detector.Judge(c.cases, c.pol, labNow) {
				got = append(got, judged{Host: r.Obs.Host, Verdict: r.Verdict, Product: r.Product, Reasons: reasonsOf(r.Findings)})
				checkFindings(t, r.Findings)
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("judgement (-want +got):\n%s", d)
			}
		})
	}
}

// TestClockSetAhead is the situation as a user meets it: genuine hosts, a
// clock two years ahead given to the probe's verification and to the
// detector alike.
func TestClockSetAhead(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	ahead := labNow.AddDate(2, 0, 0)
	var cases []detector.Case
	for _, h := range []string{labHost, labHost2, labHost3} {
		leaf := p.leaf(p.publicCA, leafSpec{names: []string{h}, sct: true})
		cases = append(cases, detector.Case{Obs: p.observeAt(h, p.system, ahead, leaf, p.publicCA.cert)})
	}
	for _, r := range detector.Judge(cases, detector.Policy{}, ahead) {
		if r.Verdict == detector.Intercepted || !slices.Equal(reasonsOf(r.Findings), rs(detector.ReasonClockSkew)) {
			t.Fatalf("%s: %s %v, want invalid-cert with clock-skew alone", r.Obs.Host, r.Verdict, reasonsOf(r.Findings))
		}
		d := r.Findings[0].Detail
		for _, want := range []string{"clock reads 2028-03-02T12:00:00Z", "at least 671 days ahead", labHost, labHost2, labHost3, "no sign of interception"} {
			if !strings.Contains(d, want) {
				t.Errorf("%s: detail %q lacks %q", r.Obs.Host, d, want)
			}
		}
		if !strings.Contains(r.Remediation, "clock is wrong") || strings.Contains(r.Remediation, "forged") {
			t.Errorf("%s: remediation %q", r.Obs.Host, r.Remediation)
		}
	}
}
