package scenario

import (
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// evidenceScenarios are chains the public store trusts that still are not
// the host's: caught only by the pins, the learned baseline or the other
// hosts, and never by public trust alone.
func evidenceScenarios() []Scenario {
	return []Scenario{
		clonedNameBehindPublicRoot(),
		sharedKeyAcrossOperators(),
		sharedKeyOneOperator(),
		rotatedCA(),
		pinsViolatedByPublicChain(),
	}
}

// learnedExpect is what `baseline learn` records for a lab host on a
// trusted network: the public intermediate and root, by key and name,
// and SCTs on a leaf weeks old.
func (e *Env) learnedExpect() detector.Expectation {
	l := &detector.Learned{SCT: true}
	for _, ca := range []*lab.CA{e.PKI.PublicIntermediate, e.PKI.PublicRoot} {
		l.CAs = append(l.CAs, detector.LearnedCA{SPKI: detector.SPKIOf(ca.Cert), Subject: ca.Cert.Subject.String()})
	}
	return detector.Expectation{Learned: l, SCT: true}
}

// forgerTargets starts a forger and points hosts at it with exp.
func (e *Env) forgerTargets(opts lab.ForgerOptions, exp detector.Expectation, hosts ...string) ([]config.Target, error) {
	f, err := lab.NewForger(opts)
	if err != nil {
		return nil, err
	}
	e.Track(f)
	var out []config.Target
	for _, h := range hosts {
		out = append(out, config.Target{Host: h, Port: 443, Address: f.Addr(), Expect: exp})
	}
	return out, nil
}

// weeksOld is a careful forger's backdating: nothing looks minted now.
func weeksOld() time.Time { return time.Now().Add(-30 * 24 * time.Hour) }

func clonedNameBehindPublicRoot() Scenario {
	return Scenario{
		Name:        "cloned-name-public-store",
		Description: "an interceptor whose root is in the store given as trust.public_roots, with a CA that copies the genuine issuer's name, against a learned baseline",
		Build: func(e *Env) (Setup, error) {
			ts, err := e.forgerTargets(lab.ForgerOptions{CA: e.PKI.ClonedIntermediate, SCT: true, KeyPerHost: true, NotBefore: weeksOld()},
				e.learnedExpect(), "github.com", "pypi.org", "index.crates.io")
			return Setup{Targets: ts, PublicRoots: []*lab.CA{e.PKI.EnterpriseRoot}}, err
		},
		Want: Want{Verdict: detector.Intercepted, Reasons: []detector.Reason{detector.ReasonCANameCloned, detector.ReasonCAPinMismatch}},
	}
}

func sharedKeyAcrossOperators() Scenario {
	return Scenario{
		Name:        "shared-key-public-store",
		Description: "no baseline, no pins: an interceptor trusted as public forges one key for hosts of different operators",
		Build: func(e *Env) (Setup, error) {
			ts, err := e.forgerTargets(lab.ForgerOptions{CA: e.PKI.OtherIntermediate, SCT: true, NotBefore: weeksOld()},
				detector.Expectation{}, "github.com", "pypi.org")
			return Setup{Targets: ts, PublicRoots: []*lab.CA{e.PKI.OtherRoot}}, err
		},
		Want: Want{Verdict: detector.Intercepted, Reasons: []detector.Reason{detector.ReasonLeafKeyReused}},
	}
}

func sharedKeyOneOperator() Scenario {
	return Scenario{
		Name:        "shared-key-one-operator",
		Description: "no baseline, no pins: one public key behind one operator's names, which nothing can tell from that operator's own habit",
		Build: func(e *Env) (Setup, error) {
			ts, err := e.forgerTargets(lab.ForgerOptions{CA: e.PKI.OtherIntermediate, SCT: true, NotBefore: weeksOld()},
				detector.Expectation{}, "static.crates.io", "index.crates.io")
			return Setup{Targets: ts, PublicRoots: []*lab.CA{e.PKI.OtherRoot}}, err
		},
		Want: Want{Verdict: detector.OK},
	}
}

func rotatedCA() Scenario {
	return Scenario{
		Name:        "rotated-ca",
		Description: "the host moved to another public CA (new key, new name) since the baseline was learned, and nothing else changed",
		Build: func(e *Env) (Setup, error) {
			ts, err := e.forgerTargets(lab.ForgerOptions{CA: e.PKI.OtherIntermediate, SCT: true, KeyPerHost: true, NotBefore: weeksOld()},
				e.learnedExpect(), "ghcr.io")
			return Setup{Targets: ts, PublicRoots: []*lab.CA{e.PKI.OtherRoot}}, err
		},
		Want: Want{Verdict: detector.OK, Reasons: []detector.Reason{detector.ReasonCAChanged}},
	}
}

func pinsViolatedByPublicChain() Scenario {
	return Scenario{
		Name:        "pins-violated-public",
		Description: "rules.yaml pins the host's CA; a chain from another public CA arrives",
		Build: func(e *Env) (Setup, error) {
			ts, err := e.forgerTargets(lab.ForgerOptions{CA: e.PKI.OtherIntermediate, SCT: true, KeyPerHost: true, NotBefore: weeksOld()},
				e.expect(), "ghcr.io")
			return Setup{Targets: ts, PublicRoots: []*lab.CA{e.PKI.OtherRoot}}, err
		},
		Want: Want{Verdict: detector.Intercepted, Reasons: []detector.Reason{detector.ReasonCAPinMismatch}},
	}
}
