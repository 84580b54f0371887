package grade

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// KeyOf names the interceptor behind a judged target: the CA above its
// leaf (detector.Root) and its path. ok is false when the target is not
// intercepted or inspected, or when no CA can be named (a leaf presented
// alone that no store verified).
func KeyOf(r detector.Result) (k Key, ok bool) {
	if r.Verdict != detector.Intercepted && r.Verdict != detector.Inspected {
		return Key{}, false
	}
	st := r.Obs.TLS
	if st == nil || len(st.Chain) == 0 {
		return Key{}, false
	}
	ca := detector.Root(st)
	if ca == nil || bytes.Equal(ca.Raw, st.Chain[0].Raw) {
		return Key{}, false
	}
	return Key{SPKI: detector.SPKIOf(ca), Path: r.Obs.Path}, true
}

// Find returns the interceptors a round's results show, in the order they
// first appear: the targets judged intercepted or inspected, grouped by
// the CA above their leaves and their path. Grading runs only for these:
// a path nothing intercepts is never graded.
func Find(results []detector.Result) []Found {
	var out []Found
	index := map[Key]int{}
	for _, r := range results {
		k, ok := KeyOf(r)
		if !ok {
			continue
		}
		i, seen := index[k]
		if !seen {
			i = len(out)
			index[k] = i
			out = append(out, Found{Key: k, CA: detector.Root(r.Obs.TLS)})
		}
		f := &out[i]
		if f.Product == "" {
			f.Product = r.Product
		}
		f.Approved = f.Approved || slices.ContainsFunc(r.Findings, func(fd detector.Finding) bool {
			return fd.Reason == detector.ReasonApprovedInspection
		})
		f.Targets = append(f.Targets, net.JoinHostPort(r.Obs.Host, strconv.Itoa(r.Obs.Port)))
		f.Leaves = append(f.Leaves, Leaf{Host: r.Obs.Host, Cert: r.Obs.TLS.Chain[0]})
	}
	return out
}

// FromControl returns the interceptor the control host reveals, for
// `grade.enabled: always` when no target showed one: the control's chain
// judged as a target of its own. It stands behind no target.
func FromControl(control *Attempt, pol detector.Policy, now time.Time) []Found {
	if control == nil {
		return nil
	}
	res := detector.Judge([]detector.Case{{Obs: control.Obs}}, pol, now)
	found := Find(res)
	for i := range found {
		found[i].Targets = nil
	}
	return found
}

// Judge grades one interceptor from what the grading handshakes showed,
// by the rubric.
func Judge(f Found, o Observed) Interceptor {
	var checks []Check
	for _, p := range o.Upstream {
		checks = append(checks, f.upstream(p, o.Control))
	}
	for _, cc := range ClientChecks {
		var a *Attempt
		if i := slices.IndexFunc(o.Client, func(p Probe) bool { return p.Check == cc.Name }); i >= 0 {
			a = o.Client[i].Attempt
		}
		checks = append(checks, f.client(cc, a))
	}
	valid, all := f.forged(o)
	checks = append(checks, f.leafChecks(valid, all)...)
	return Interceptor{Found: f, Grade: Rate(checks), Checks: checks}
}

// forged lists the leaves the interceptor was seen to forge: for hosts
// with a valid certificate of their own (the targets', the control's),
// and all of them (the test hosts' too).
func (f Found) forged(o Observed) (valid, all []Leaf) {
	valid = slices.Clone(f.Leaves)
	if f.intercepts(o.Control) {
		valid = append(valid, Leaf{Host: o.Control.Obs.Host, Cert: o.Control.Obs.TLS.Chain[0]})
	}
	all = slices.Clone(valid)
	for _, p := range o.Upstream {
		if f.intercepts(p.Attempt) {
			all = append(all, Leaf{Host: p.Attempt.Obs.Host, Cert: p.Attempt.Obs.TLS.Chain[0]})
		}
	}
	return valid, all
}

// Annotate returns results with the critical finding
// interceptor-accepts-invalid-upstream added to every target behind an
// interceptor that re-signs an invalid upstream certificate. The verdict
// stays what it was (the finding implies none: an approved box is still
// the approved box), but `mitmwatch check` exits 1 for it.
func Annotate(results []detector.Result, ics []Interceptor) []detector.Result {
	out := slices.Clone(results)
	for _, ic := range ics {
		if !ic.ReSigns() {
			continue
		}
		for i, r := range out {
			if k, ok := KeyOf(r); ok && k == ic.Key && !slices.ContainsFunc(r.Findings, func(fd detector.Finding) bool {
				return fd.Reason == detector.ReasonInterceptorAcceptsInvalidUpstream
			}) {
				out[i].Findings = append(slices.Clone(r.Findings), Finding(ic))
			}
		}
	}
	return out
}

// Finding is the critical finding for a target behind ic, which re-signs.
func Finding(ic Interceptor) detector.Finding {
	var names []string
	for _, c := range ic.ReSigned() {
		names = append(names, strings.TrimPrefix(c.Name, UpstreamPrefix))
	}
	who := "the interceptor"
	if ic.Approved {
		who = "the approved interceptor"
	}
	return detector.Finding{
		Reason:   detector.ReasonInterceptorAcceptsInvalidUpstream,
		Severity: detector.Critical,
		Detail: fmt.Sprintf("%s on this path (%s, CA %q, SPKI %s) re-signs invalid upstream certificates with a CA this machine trusts (test hosts: %s): "+
			"anyone between it and a host can pose as that host to every tool here. Have its administrator turn upstream certificate validation on "+
			"(mitmproxy: drop ssl_insecure; squid: drop flags=DONT_VERIFY_PEER and sslproxy_cert_error allow; sslsplit: VerifyPeer yes); never turn verification off in the tools",
			who, ic.Path, ic.CA.Subject.CommonName, ic.SPKI, strings.Join(names, ", ")),
	}
}
