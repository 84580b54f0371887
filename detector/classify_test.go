package detector_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

const (
	labHost  = "goproxy.lab.example"
	labHost2 = "sumdb.lab.example"
)

// classifyCase is one observation to judge and what Classify must say.
type classifyCase struct {
	name    string
	obs     detector.Observation
	exp     detector.Expectation
	pol     detector.Policy
	reasons []detector.Reason // sorted
	verdict detector.Verdict
	product string
}

// tweak returns a copy of o, with its own TLSState, changed by f.
func tweak(o detector.Observation, f func(*detector.Observation)) detector.Observation {
	if o.TLS != nil {
		st := *o.TLS
		o.TLS = &st
	}
	f(&o)
	return o
}

func tls12(o *detector.Observation) {
	o.TLS.Version = tls.VersionTLS12
	o.TLS.CipherSuite = tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	o.BestVersion = tls.VersionTLS12
}

// reasonsOf is the sorted reason list of findings.
func reasonsOf(fs []detector.Finding) []detector.Reason {
	var out []detector.Reason
	for _, f := range fs {
		out = append(out, f.Reason)
	}
	slices.Sort(out)
	return out
}

// rs builds a sorted reason list.
func rs(r ...detector.Reason) []detector.Reason {
	slices.Sort(r)
	return r
}

// classifyTable holds every single-observation scenario. Each verdict has
// cases that produce it and cases on a clean or merely broken network that
// must not.
func classifyTable(p *labPKI) []classifyCase {
	var (
		genuine     = p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true})
		renewed     = p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true, notBefore: labNow.Add(-2 * time.Hour)})
		otherCA     = p.leaf(p.publicCA2, leafSpec{names: []string{labHost}, sct: true})
		expired     = p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true, notBefore: labNow.AddDate(0, 0, -400), notAfter: labNow.AddDate(0, 0, -1)})
		portal      = p.leaf(p.publicCA, leafSpec{names: []string{"portal.hotel.example"}, sct: true})
		namedPublic = p.leaf(p.publicZscalerCA, leafSpec{names: []string{labHost}, sct: true})
		bumped      = p.leaf(p.corpCA, leafSpec{names: []string{labHost}, notBefore: labNow.Add(-10 * time.Minute)})
		bumpedOld   = p.leaf(p.corpCA, leafSpec{names: []string{labHost}, notBefore: labNow.AddDate(0, 0, -3)})
		zLeaf       = p.leaf(p.zRoot, leafSpec{names: []string{labHost}, notBefore: labNow.Add(-2 * time.Minute)})
		zLeafOld    = p.leaf(p.zCA, leafSpec{names: []string{labHost}, notBefore: labNow.AddDate(0, 0, -3)})
		selfSigned  = p.leaf(nil, leafSpec{names: []string{labHost}, notBefore: labNow.AddDate(0, 0, -100)})
	)
	strict := detector.Expectation{
		CASPKI:     spkis(p.publicCA),
		IPRanges:   []netip.Prefix{labRange},
		MinVersion: tls.VersionTLS13,
		ALPN:       []string{"h2", "http/1.1"},
		SCT:        true,
	}
	approveZ := detector.Policy{ApprovedInspection: spkis(p.zRoot)}

	clean := p.observe(labHost, p.system, genuine, p.publicCA.cert)
	zscaler := p.observe(labHost, p.system, zLeaf)
	plain := func(a *detector.HTTPAnswer) detector.Observation {
		o := failed(labHost, detector.FailureNotTLS, "tls: first record does not look like a TLS handshake")
		o.Plain = a
		return o
	}
	const (
		ok, inspected, intercepted, downgraded = detector.OK, detector.Inspected, detector.Intercepted, detector.Downgraded
		plaintext, portalV, blocked            = detector.Plaintext, detector.CaptivePortal, detector.Blocked
		invalid, unreachable                   = detector.InvalidCert, detector.Unreachable
	)
	R := struct {
		sysOnly, pin, changed, product, noSCT, byRoot, fresh, approved, untrusted,
		otherName, invalid, version, alpn, cipher, sentinel, plain, block, redirect,
		proxyHdr, outOfRange, unreachable detector.Reason
	}{
		detector.ReasonSystemRootOnly, detector.ReasonCAPinMismatch, detector.ReasonCAChanged,
		detector.ReasonKnownProduct, detector.ReasonLeafWithoutSCT, detector.ReasonLeafSignedByRoot,
		detector.ReasonLeafFresh, detector.ReasonApprovedInspection, detector.ReasonUntrustedChain,
		detector.ReasonCertOtherName, detector.ReasonCertInvalid, detector.ReasonVersionBelow,
		detector.ReasonALPNBelow, detector.ReasonWeakCipher, detector.ReasonDowngradeSentinel,
		detector.ReasonPlaintext, detector.ReasonBlockPage, detector.ReasonPortalRedirect,
		detector.ReasonProxyHeaders, detector.ReasonAddressOutOfRange, detector.ReasonUnreachable,
	}

	return []classifyCase{
		// A clean path: nothing fires.
		{name: "genuine chain meets every expectation", obs: clean, exp: strict, verdict: ok},
		{name: "renewed leaf: new key and serial, same pinned CA, minted hours ago",
			obs: p.observe(labHost, p.system, renewed, p.publicCA.cert), exp: strict, verdict: ok},
		{name: "pinned root is not presented but verification reached it",
			obs: clean, exp: detector.Expectation{CASPKI: spkis(p.publicRoot), SCT: true}, verdict: ok},
		{name: "publicly trusted chain from a CA the rules.yaml pins do not name: the pins are an assertion",
			obs: p.observe(labHost, p.system, otherCA, p.publicCA2.cert), exp: strict,
			reasons: rs(R.pin), verdict: intercepted},
		{name: "product name inside a publicly trusted chain names no product",
			obs: p.observe(labHost, p.system, namedPublic, p.publicZscalerCA.cert), exp: detector.Expectation{SCT: true}, verdict: ok},
		{name: "approved inspection CA configured but this path is clean",
			obs: clean, exp: strict, pol: approveZ, verdict: ok},

		// Interception.
		{name: "ssl-bump root installed: fresh leaf without SCT under an unpinned CA",
			obs: p.observe(labHost, p.system, bumped, p.corpCA.cert), exp: strict,
			reasons: rs(R.sysOnly, R.pin, R.noSCT, R.fresh), verdict: intercepted},
		{name: "installed root with no expectation at all: system-root-only suffices",
			obs:     p.observe(labHost, p.system, bumpedOld, p.corpCA.cert),
			reasons: rs(R.sysOnly, R.noSCT), verdict: intercepted},
		{name: "Zscaler root installed signs a leaf minted minutes ago",
			obs: zscaler, exp: strict,
			reasons: rs(R.sysOnly, R.pin, R.product, R.noSCT, R.byRoot, R.fresh), verdict: intercepted, product: "Zscaler"},
		{name: "Zscaler root not installed: the name still identifies it",
			obs:     p.observe(labHost, p.bareSystem, zLeafOld, p.zCA.cert),
			reasons: rs(R.product, R.noSCT), verdict: intercepted, product: "Zscaler"},
		{name: "untrusted chain under a pinned host is a pin mismatch",
			obs: p.observe(labHost, p.bareSystem, bumpedOld, p.corpCA.cert), exp: detector.Expectation{CASPKI: spkis(p.publicCA)},
			reasons: rs(R.pin, R.noSCT), verdict: intercepted},

		// Approved inspection.
		{name: "approved inspection CA terminates TLS",
			obs: zscaler, exp: strict, pol: approveZ,
			reasons: rs(R.approved), verdict: inspected, product: "Zscaler"},
		{name: "approved inspection CA negotiating TLS 1.2 below the expected 1.3",
			obs: tweak(zscaler, tls12), exp: strict, pol: approveZ,
			reasons: rs(R.approved, R.version), verdict: downgraded, product: "Zscaler"},

		// Invalid certificates that are no evidence of interception.
		{name: "private CA not installed anywhere",
			obs:     p.observe(labHost, p.bareSystem, bumpedOld, p.corpCA.cert),
			reasons: rs(R.noSCT, R.untrusted), verdict: invalid},
		{name: "self-signed leaf",
			obs:     p.observe(labHost, p.system, selfSigned),
			reasons: rs(R.byRoot, R.noSCT, R.untrusted), verdict: invalid},
		{name: "expired certificate from the pinned public CA",
			obs: p.observe(labHost, p.system, expired, p.publicCA.cert), exp: strict,
			reasons: rs(R.invalid), verdict: invalid},
		{name: "server presented no certificate",
			obs: p.observe(labHost, p.system), reasons: rs(R.untrusted), verdict: invalid},

		// A certificate for another name: a portal answering for everyone.
		{name: "publicly trusted certificate for another name",
			obs:     p.observe(labHost, p.system, portal, p.publicCA.cert),
			reasons: rs(R.otherName), verdict: portalV},

		// Downgrades, and what is not one.
		{name: "TLS 1.2 with no version expectation",
			obs: tweak(clean, tls12), exp: detector.Expectation{CASPKI: spkis(p.publicCA), ALPN: []string{"h2"}, SCT: true}, verdict: ok},
		{name: "TLS 1.2 below the expected 1.3",
			obs: tweak(clean, func(o *detector.Observation) {
				tls12(o)
				o.BestVersionFailure = detector.FailureProtocolVersion
			}), exp: strict,
			reasons: rs(R.version), verdict: downgraded},
		{name: "http/1.1 where the host offers h2",
			obs: tweak(clean, func(o *detector.Observation) { o.TLS.ALPN = "http/1.1" }), exp: strict,
			reasons: rs(R.alpn), verdict: downgraded},
		{name: "no ALPN where the host offers h2",
			obs: tweak(clean, func(o *detector.Observation) { o.TLS.ALPN = "" }), exp: strict,
			reasons: rs(R.alpn), verdict: downgraded},
		{name: "http/1.1 with no ALPN expectation",
			obs: tweak(clean, func(o *detector.Observation) { o.TLS.ALPN = "http/1.1" }), verdict: ok},
		{name: "CBC cipher suite",
			obs: tweak(clean, func(o *detector.Observation) {
				tls12(o)
				o.TLS.CipherSuite = tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
			}),
			reasons: rs(R.cipher), verdict: downgraded},
		{name: "RC4 cipher suite",
			obs: tweak(clean, func(o *detector.Observation) {
				tls12(o)
				o.TLS.CipherSuite = tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA
			}),
			reasons: rs(R.cipher), verdict: downgraded},

		// Addresses.
		{name: "connected outside the published ranges is only a warning",
			obs: tweak(clean, func(o *detector.Observation) { o.ConnectedAddr = netip.MustParseAddrPort("203.0.113.7:443") }), exp: strict,
			reasons: rs(R.outOfRange), verdict: ok},
		{name: "IPv4-mapped address inside the ranges",
			obs: tweak(clean, func(o *detector.Observation) {
				o.ConnectedAddr = netip.AddrPortFrom(netip.AddrFrom16(labAddr.Addr().As16()), 443)
			}), exp: strict, verdict: ok},
		{name: "through a proxy the connected address is the proxy's",
			obs: tweak(clean, func(o *detector.Observation) {
				o.Path = detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"}
				o.ConnectedAddr = netip.MustParseAddrPort("10.0.0.8:3128")
			}), exp: strict, verdict: ok},

		// Attempts that completed no handshake: a broken network is unreachable, never intercepted or blocked.
		{name: "timeout", obs: failed(labHost, detector.FailureTimeout, "connecting to 142.250.74.17:443: dial tcp 142.250.74.17:443: i/o timeout"),
			exp: strict, reasons: rs(R.unreachable), verdict: unreachable},
		{name: "connection refused", obs: failed(labHost, detector.FailureRefused, "connect: connection refused"),
			exp: strict, reasons: rs(R.unreachable), verdict: unreachable},
		{name: "connection reset", obs: failed(labHost, detector.FailureReset, "read: connection reset by peer"),
			exp: strict, reasons: rs(R.unreachable), verdict: unreachable},
		{name: "EOF during the handshake", obs: failed(labHost, detector.FailureEOF, "EOF"),
			exp: strict, reasons: rs(R.unreachable), verdict: unreachable},
		{name: "DNS failure", obs: failed(labHost, detector.FailureDNS, "resolving goproxy.lab.example: lookup goproxy.lab.example: no such host"),
			exp: strict, reasons: rs(R.unreachable), verdict: unreachable},
		{name: "network unreachable", obs: failed(labHost, detector.FailureNetUnreachable, "connect: network is unreachable"),
			reasons: rs(R.unreachable), verdict: unreachable},
		{name: "host unreachable", obs: failed(labHost, detector.FailureHostUnreachable, "connect: no route to host"),
			reasons: rs(R.unreachable), verdict: unreachable},
		{name: "TLS alert", obs: failed(labHost, detector.FailureTLSAlert, "remote error: tls: handshake failure"),
			reasons: rs(R.unreachable), verdict: unreachable},
		{name: "unknown failure", obs: failed(labHost, detector.FailureUnknown, "something odd"),
			reasons: rs(R.unreachable), verdict: unreachable},
		{name: "proxy failure without an answer", obs: failed(labHost, detector.FailureProxy, "reading CONNECT answer: EOF"),
			reasons: rs(R.unreachable), verdict: unreachable},

		// Something else answers on the TLS port.
		{name: "not TLS, nothing more known", obs: failed(labHost, detector.FailureNotTLS, "tls: first record does not look like a TLS handshake"),
			reasons: rs(R.plain), verdict: plaintext},
		{name: "plain HTTP page on port 443",
			obs:     plain(&detector.HTTPAnswer{Status: 200, Title: "It works!", BodySnippet: "<html><title>It works!</title>"}),
			reasons: rs(R.plain), verdict: plaintext},
		{name: "plain HTTP page with proxy headers",
			obs:     plain(&detector.HTTPAnswer{Status: 200, ProxyHeaders: []string{"Via: 1.1 squid"}, BodySnippet: "hello"}),
			reasons: rs(R.plain, R.proxyHdr), verdict: plaintext},
		{name: "plain answer that is not even HTTP",
			obs:     plain(&detector.HTTPAnswer{BodySnippet: "SSH-2.0-OpenSSH_9.6"}),
			reasons: rs(R.plain), verdict: plaintext},
		{name: "downgrade sentinel", obs: failed(labHost, detector.FailureDowngrade, "tls: downgrade attempt detected, possibly due to a MitM attack or a broken middlebox"),
			reasons: rs(R.sentinel), verdict: downgraded},
		{name: "every offered TLS version refused", obs: failed(labHost, detector.FailureProtocolVersion, "remote error: tls: protocol version not supported"),
			reasons: rs(R.version), verdict: downgraded},

		// Portals and block pages, and what is neither.
		{name: "redirect to a login page elsewhere",
			obs:     plain(&detector.HTTPAnswer{Status: 302, Location: "http://login.hotspot.example/?orig=goproxy.lab.example"}),
			reasons: rs(R.redirect), verdict: portalV},
		{name: "redirect to https on the same host",
			obs:     plain(&detector.HTTPAnswer{Status: 302, Location: "https://goproxy.lab.example/"}),
			reasons: rs(R.plain), verdict: plaintext},
		{name: "redirect to the same host in other case and with a port",
			obs:     plain(&detector.HTTPAnswer{Status: 301, Location: "HTTPS://GoProxy.Lab.EXAMPLE:443/x"}),
			reasons: rs(R.plain), verdict: plaintext},
		{name: "relative redirect",
			obs:     plain(&detector.HTTPAnswer{Status: 302, Location: "/login"}),
			reasons: rs(R.plain), verdict: plaintext},
		{name: "redirect with an unparseable Location",
			obs:     plain(&detector.HTTPAnswer{Status: 302, Location: "http://[::1"}),
			reasons: rs(R.plain), verdict: plaintext},
		{name: "403 on port 443",
			obs:     plain(&detector.HTTPAnswer{Status: 403, Title: "Forbidden"}),
			reasons: rs(R.block), verdict: blocked},
		{name: "451 on port 443",
			obs:     plain(&detector.HTTPAnswer{Status: 451, BodySnippet: "Unavailable For Legal Reasons"}),
			reasons: rs(R.block), verdict: blocked},
		{name: "200 block page from a web filter",
			obs:     plain(&detector.HTTPAnswer{Status: 200, Title: "Web Filter: Access Denied"}),
			reasons: rs(R.block), verdict: blocked},
		{name: "proxy asks for authentication (407)",
			obs:     viaProxy(labHost, &detector.HTTPAnswer{Status: 407, Title: "Proxy Authentication Required"}),
			reasons: rs(R.unreachable), verdict: unreachable},
		{name: "proxy upstream down (502)",
			obs:     viaProxy(labHost, &detector.HTTPAnswer{Status: 502, Title: "Bad Gateway"}),
			reasons: rs(R.unreachable), verdict: unreachable},
		{name: "proxy refuses by policy (403)",
			obs:     viaProxy(labHost, &detector.HTTPAnswer{Status: 403, Title: "Access Denied", ProxyHeaders: []string{"Via: 1.1 proxy.corp.example"}}),
			reasons: rs(R.block, R.proxyHdr), verdict: blocked},
		{name: "proxy redirects to its login portal",
			obs:     viaProxy(labHost, &detector.HTTPAnswer{Status: 302, Location: "https://login.corp.example/auth"}),
			reasons: rs(R.redirect), verdict: portalV},
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	runClassifyTable(t, classifyTable(newLabPKI(t)))
}

// runClassifyTable checks each case's reasons, verdict and product.
func runClassifyTable(t *testing.T, table []classifyCase) {
	for _, c := range table {
		t.Run(c.name, func(t *testing.T) {
			fs, product := detector.Classify(c.obs, c.exp, c.pol, labNow)
			if diff := cmp.Diff(c.reasons, reasonsOf(fs)); diff != "" {
				t.Errorf("reasons (-want +got):\n%s\nfindings: %+v", diff, fs)
			}
			if got := detector.VerdictOf(fs); got != c.verdict {
				t.Errorf("verdict = %s, want %s; findings: %+v", got, c.verdict, fs)
			}
			if product != c.product {
				t.Errorf("product = %q, want %q", product, c.product)
			}
			checkFindings(t, fs)
		})
	}
}

// severityOf is the severity each reason is reported with.
var severityOf = map[detector.Reason]detector.Severity{
	detector.ReasonSystemRootOnly:      detector.Critical,
	detector.ReasonCAPinMismatch:       detector.Critical,
	detector.ReasonCAChanged:           detector.Warning,
	detector.ReasonKnownProduct:        detector.Critical,
	detector.ReasonLeafWithoutSCT:      detector.Warning,
	detector.ReasonLeafKeyReused:       detector.Critical,
	detector.ReasonLeafSignedByRoot:    detector.Warning,
	detector.ReasonLeafFresh:           detector.Warning,
	detector.ReasonApprovedInspection:  detector.Info,
	detector.ReasonTCPTerminatedNearby: detector.Warning,
	detector.ReasonTLSAnsweredEarly:    detector.Warning,
	detector.ReasonServerTTLChanged:    detector.Info,
	detector.ReasonCANameCloned:        detector.Critical,
	detector.ReasonCAChangedTogether:   detector.Warning,
	detector.ReasonRTTSplit:            detector.Warning,
	detector.ReasonUntrustedChain:      detector.Critical,
	detector.ReasonCertOtherName:       detector.Critical,
	detector.ReasonCertInvalid:         detector.Critical,
	detector.ReasonVersionBelow:        detector.Critical,
	detector.ReasonALPNBelow:           detector.Warning,
	detector.ReasonWeakCipher:          detector.Warning,
	detector.ReasonDowngradeSentinel:   detector.Critical,
	detector.ReasonPlaintext:           detector.Critical,
	detector.ReasonBlockPage:           detector.Critical,
	detector.ReasonPortalRedirect:      detector.Critical,
	detector.ReasonProxyHeaders:        detector.Info,
	detector.ReasonAddressOutOfRange:   detector.Warning,
	detector.ReasonUnreachable:         detector.Info,
	detector.ReasonDNSDenied:           detector.Critical,
	detector.ReasonDNSServfail:         detector.Warning,
	detector.ReasonDNSBogon:            detector.Critical,
	detector.ReasonDNSMismatch:         detector.Critical,
	detector.ReasonDNSDiffers:          detector.Info,
	detector.ReasonDNSWildcard:         detector.Critical,
	detector.ReasonDNSTTLZero:          detector.Warning,
	detector.ReasonSNIReset:            detector.Critical,
	detector.ReasonSNIDropped:          detector.Critical,
	detector.ReasonDNSUnverified:       detector.Info,
	detector.ReasonHostsOverride:       detector.Warning,
	detector.ReasonHostsBlock:          detector.Critical,
	// integrity.go
	detector.ReasonSSHHostKeyMismatch:   detector.Critical,
	detector.ReasonSSHHostKeyUnverified: detector.Info,
	detector.ReasonSSHPortBlocked:       detector.Critical,
	detector.ReasonSSHNotSSH:            detector.Critical,
	detector.ReasonSumDBSignature:       detector.Critical,
	detector.ReasonSumDBForked:          detector.Critical,
	detector.ReasonSumDBStale:           detector.Warning,
	detector.ReasonSumDBBlocked:         detector.Critical,
	detector.ReasonSumDBFirstTree:       detector.Info,
}

// checkFindings holds for every finding: a known reason, its usual
// severity, some evidence, and no reason twice.
func checkFindings(t *testing.T, fs []detector.Finding) {
	t.Helper()
	seen := map[detector.Reason]bool{}
	for _, f := range fs {
		if !slices.Contains(detector.Reasons, f.Reason) {
			t.Errorf("finding with a reason outside Reasons: %+v", f)
		}
		if want, ok := severityOf[f.Reason]; ok && f.Severity != want {
			t.Errorf("%s has severity %s, want %s", f.Reason, f.Severity, want)
		}
		if strings.TrimSpace(f.Detail) == "" {
			t.Errorf("%s has no detail", f.Reason)
		}
		if seen[f.Reason] {
			t.Errorf("%s reported twice: %+v", f.Reason, fs)
		}
		seen[f.Reason] = true
	}
}

func TestClassifyDetails(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	zLeaf := p.leaf(p.zRoot, leafSpec{names: []string{labHost}, notBefore: labNow.Add(-2 * time.Minute)})
	obs := p.observe(labHost, p.system, zLeaf)
	fs, _ := detector.Classify(obs, detector.Expectation{CASPKI: spkis(p.publicCA)}, detector.Policy{}, labNow)
	want := map[detector.Reason][]string{
		detector.ReasonSystemRootOnly:   {"CN=Zscaler Root CA", detector.SPKIOf(p.zRoot.cert).String()},
		detector.ReasonCAPinMismatch:    {"CN=Zscaler Root CA, O=Zscaler Inc.", detector.SPKIOf(p.zRoot.cert).String()},
		detector.ReasonKnownProduct:     {"Zscaler"},
		detector.ReasonLeafSignedByRoot: {"Zscaler Root CA"},
		detector.ReasonLeafFresh:        {"2m0s"},
	}
	for _, f := range fs {
		for _, s := range want[f.Reason] {
			if !strings.Contains(f.Detail, s) {
				t.Errorf("%s detail %q does not mention %q", f.Reason, f.Detail, s)
			}
		}
	}

	// The approved-inspection finding names the CA and the signals it replaced.
	fs, _ = detector.Classify(obs, detector.Expectation{CASPKI: spkis(p.publicCA)}, detector.Policy{ApprovedInspection: spkis(p.zRoot)}, labNow)
	if len(fs) == 0 || fs[0].Reason != detector.ReasonApprovedInspection {
		t.Fatalf("first finding is not approved-inspection: %+v", fs)
	}
	for _, s := range []string{"Zscaler Root CA", detector.SPKIOf(p.zRoot.cert).String(), "system-root-only", "ca-pin-mismatch", "known-interception-product"} {
		if !strings.Contains(fs[0].Detail, s) {
			t.Errorf("approved-inspection detail %q does not mention %q", fs[0].Detail, s)
		}
	}
}

// TestClassifyLeafFreshWindow pins the edges of "minted for this connection".
func TestClassifyLeafFreshWindow(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	for _, c := range []struct {
		age   time.Duration // labNow - NotBefore
		fresh bool
	}{
		{-10 * time.Minute, false}, // not yet valid: a clock problem, not forging
		{-4 * time.Minute, true},   // small clock skew
		{0, true},
		{23 * time.Hour, true},
		{25 * time.Hour, false},
	} {
		leaf := p.leaf(p.corpCA, leafSpec{names: []string{labHost}, notBefore: labNow.Add(-c.age)})
		for _, installed := range []bool{true, false} {
			sys := p.bareSystem
			if installed {
				sys = p.system
			}
			fs, _ := detector.Classify(p.observe(labHost, sys, leaf, p.corpCA.cert), detector.Expectation{}, detector.Policy{}, labNow)
			if got := slices.Contains(reasonsOf(fs), detector.ReasonLeafFresh); got != c.fresh {
				t.Errorf("age %v, installed %v: leaf-freshly-minted = %v, want %v", c.age, installed, got, c.fresh)
			}
		}
	}
	// A public chain is never judged by its age: renewals happen every day.
	leaf := p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true, notBefore: labNow.Add(-time.Minute)})
	fs, _ := detector.Classify(p.observe(labHost, p.system, leaf, p.publicCA.cert), detector.Expectation{SCT: true}, detector.Policy{}, labNow)
	if len(fs) != 0 {
		t.Errorf("public leaf minted a minute ago: %+v", fs)
	}
}

// judgeCase is a batch of targets judged together.
type judgeCase struct {
	name  string
	cases []detector.Case
	pol   detector.Policy
	want  []judged
}

type judged struct {
	Host    string
	Verdict detector.Verdict
	Product string
	Reasons []detector.Reason
}

func judgeTable(p *labPKI) []judgeCase {
	shared := p.newKey()
	zKey := p.newKey()
	old := labNow.AddDate(0, 0, -3)
	var (
		san     = p.leaf(p.publicCA, leafSpec{names: []string{labHost, labHost2}, sct: true})
		forgedA = p.leaf(p.corpCA, leafSpec{names: []string{labHost}, key: shared, notBefore: old})
		forgedB = p.leaf(p.corpCA, leafSpec{names: []string{labHost2}, key: shared, notBefore: old})
		forgedC = p.leaf(p.corpCA, leafSpec{names: []string{labHost}, key: shared, notBefore: old})
		zA      = p.leaf(p.zRoot, leafSpec{names: []string{labHost}, key: zKey, notBefore: old})
		zB      = p.leaf(p.zRoot, leafSpec{names: []string{labHost2}, key: zKey, notBefore: old})
		genuine = p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true})
	)
	pinned := detector.Expectation{CASPKI: spkis(p.publicCA), SCT: true}
	viaProxyPath := func(o detector.Observation) detector.Observation {
		return tweak(o, func(o *detector.Observation) {
			o.Path = detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"}
		})
	}
	reused := detector.ReasonLeafKeyReused
	return []judgeCase{
		{
			name: "one SAN certificate serves two hosts",
			cases: []detector.Case{
				{Obs: p.observe(labHost, p.system, san, p.publicCA.cert), Expect: pinned},
				{Obs: p.observe(labHost2, p.system, san, p.publicCA.cert), Expect: pinned},
			},
			want: []judged{{Host: labHost, Verdict: detector.OK}, {Host: labHost2, Verdict: detector.OK}},
		},
		{
			name: "two forged leaves with one key for two hosts",
			cases: []detector.Case{
				{Obs: p.observe(labHost, p.bareSystem, forgedA, p.corpCA.cert)},
				{Obs: p.observe(labHost2, p.bareSystem, forgedB, p.corpCA.cert)},
			},
			// Alone, each would be invalid-cert; the shared key makes it interception.
			want: []judged{
				{Host: labHost, Verdict: detector.Intercepted, Reasons: rs(reused, detector.ReasonLeafWithoutSCT, detector.ReasonUntrustedChain)},
				{Host: labHost2, Verdict: detector.Intercepted, Reasons: rs(reused, detector.ReasonLeafWithoutSCT, detector.ReasonUntrustedChain)},
			},
		},
		{
			name: "one host seen directly and through a proxy with two leaves of one key",
			cases: []detector.Case{
				{Obs: p.observe(labHost, p.bareSystem, forgedA, p.corpCA.cert)},
				{Obs: viaProxyPath(p.observe(labHost, p.bareSystem, forgedC, p.corpCA.cert))},
			},
			want: []judged{
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonLeafWithoutSCT, detector.ReasonUntrustedChain)},
				{Host: labHost, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonLeafWithoutSCT, detector.ReasonUntrustedChain)},
			},
		},
		{
			name: "approved inspection reuses one key for every host",
			cases: []detector.Case{
				{Obs: p.observe(labHost, p.system, zA), Expect: pinned},
				{Obs: p.observe(labHost2, p.system, zB), Expect: pinned},
			},
			pol: detector.Policy{ApprovedInspection: spkis(p.zRoot)},
			want: []judged{
				{Host: labHost, Verdict: detector.Inspected, Product: "Zscaler", Reasons: rs(detector.ReasonApprovedInspection)},
				{Host: labHost2, Verdict: detector.Inspected, Product: "Zscaler", Reasons: rs(detector.ReasonApprovedInspection)},
			},
		},
		{
			name: "failed attempts sit beside clean ones",
			cases: []detector.Case{
				{Obs: p.observe(labHost, p.system, genuine, p.publicCA.cert), Expect: pinned},
				{Obs: failed(labHost2, detector.FailureTimeout, "i/o timeout"), Expect: pinned},
				{Obs: p.observe(labHost2, p.system)},
			},
			want: []judged{
				{Host: labHost, Verdict: detector.OK},
				{Host: labHost2, Verdict: detector.Unreachable, Reasons: rs(detector.ReasonUnreachable)},
				{Host: labHost2, Verdict: detector.InvalidCert, Reasons: rs(detector.ReasonUntrustedChain)},
			},
		},
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	runJudgeTable(t, judgeTable(newLabPKI(t)))
}

// runJudgeTable judges each case of a table together and checks the
// results: verdicts, products and reasons as wanted, each verdict derived
// from its findings, each remediation the one Remediation gives, and none
// for a plain ok.
func runJudgeTable(t *testing.T, table []judgeCase) {
	t.Helper()
	for _, c := range table {
		t.Run(c.name, func(t *testing.T) {
			results := detector.Judge(c.cases, c.pol, labNow)
			var got []judged
			for i, r := range results {
				got = append(got, judged{Host: r.Obs.Host, Verdict: r.Verdict, Product: r.Product, Reasons: reasonsOf(r.Findings)})
				checkFindings(t, r.Findings)
				if v := detector.VerdictOf(r.Findings); v != r.Verdict {
					t.Errorf("result %d: verdict %s is not VerdictOf(findings) = %s", i, r.Verdict, v)
				}
				if want := detector.Remediation(r.Verdict, r.Obs, r.Product, r.Findings); r.Remediation != want {
					t.Errorf("result %d: remediation %q, want %q", i, r.Remediation, want)
				}
				caChanged := slices.ContainsFunc(r.Findings, func(f detector.Finding) bool { return f.Reason == detector.ReasonCAChanged })
				if (r.Remediation == "") != (r.Verdict == detector.OK && !caChanged) {
					t.Errorf("result %d: verdict %s with remediation %q", i, r.Verdict, r.Remediation)
				}
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
				for _, r := range results {
					t.Logf("%s: %+v", r.Obs.Host, r.Findings)
				}
			}
		})
	}
}

// JudgeAmong, judging one case with the others as context, as the daemon
// does after each probe, reaches what Judge reaches for that case.
func TestJudgeAmongAgreesWithJudge(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	for _, c := range judgeTable(p) {
		want := detector.Judge(c.cases, c.pol, labNow)
		for i := range c.cases {
			var others []*detector.Case
			for j := range c.cases {
				if j != i {
					others = append(others, &c.cases[j])
				}
			}
			got := detector.JudgeAmong(c.cases[i], others, c.pol, labNow)
			if diff := cmp.Diff(judged{Host: want[i].Obs.Host, Verdict: want[i].Verdict, Product: want[i].Product, Reasons: reasonsOf(want[i].Findings)},
				judged{Host: got.Obs.Host, Verdict: got.Verdict, Product: got.Product, Reasons: reasonsOf(got.Findings)}); diff != "" {
				t.Errorf("%s, case %d: JudgeAmong differs from Judge (-judge +among):\n%s", c.name, i, diff)
			}
			if got.Remediation != want[i].Remediation {
				t.Errorf("%s, case %d: remediation %q, Judge %q", c.name, i, got.Remediation, want[i].Remediation)
			}
		}
	}
}

func TestJudgeReusedKeyNamesTheOtherHosts(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	key := p.newKey()
	hosts := []string{labHost, labHost2, "github.com"}
	var cases []detector.Case
	for _, h := range hosts {
		leaf := p.leaf(p.corpCA, leafSpec{names: []string{h}, key: key})
		cases = append(cases, detector.Case{Obs: p.observe(h, p.system, leaf, p.corpCA.cert)})
	}
	for _, r := range detector.Judge(cases, detector.Policy{}, labNow) {
		i := slices.IndexFunc(r.Findings, func(f detector.Finding) bool { return f.Reason == detector.ReasonLeafKeyReused })
		if i < 0 {
			t.Errorf("%s: no leaf-key-reused finding: %+v", r.Obs.Host, r.Findings)
			continue
		}
		for _, h := range hosts {
			if mentioned := strings.Contains(r.Findings[i].Detail, h); mentioned != (h != r.Obs.Host) {
				t.Errorf("%s: detail %q mentions %s: %v", r.Obs.Host, r.Findings[i].Detail, h, mentioned)
			}
		}
	}
}

// TestJudgeAgreesWithClassify: with nothing to compare across targets,
// Judge is Classify plus VerdictOf.
func TestJudgeAgreesWithClassify(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	for _, c := range classifyTable(p) {
		rs := detector.Judge([]detector.Case{{Obs: c.obs, Expect: c.exp}}, c.pol, labNow)
		fs, product := detector.Classify(c.obs, c.exp, c.pol, labNow)
		if diff := cmp.Diff(fs, rs[0].Findings); diff != "" {
			t.Errorf("%s: Judge findings differ from Classify (-classify +judge):\n%s", c.name, diff)
		}
		if rs[0].Product != product {
			t.Errorf("%s: Judge product %q, Classify %q", c.name, rs[0].Product, product)
		}
	}
}

// TestEveryReasonAndVerdictIsExercised keeps the tables above exhaustive: a
// new reason or verdict needs a scenario that produces it.
func TestEveryReasonAndVerdictIsExercised(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	reasons := map[detector.Reason]bool{}
	verdicts := map[detector.Verdict]bool{}
	for _, c := range slices.Concat(classifyTable(p), dnsTable(p), pathTable(p), sniTable(p), integrityTable(p)) {
		fs, _ := detector.Classify(c.obs, c.exp, c.pol, labNow)
		for _, f := range fs {
			reasons[f.Reason] = true
		}
		verdicts[detector.VerdictOf(fs)] = true
	}
	for _, c := range slices.Concat(judgeTable(p), evidenceTable(p), clockTable(p)) {
		for _, r := range detector.Judge(c.cases, c.pol, labNow) {
			for _, f := range r.Findings {
				reasons[f.Reason] = true
			}
			verdicts[r.Verdict] = true
		}
	}
	unproduced := map[detector.Reason]bool{
		// Found by handshakes to test hosts through an interceptor:
		// package grade produces it, and its tests exercise it.
		detector.ReasonInterceptorAcceptsInvalidUpstream: true,
	}
	for _, r := range detector.Reasons {
		if !reasons[r] && !unproduced[r] {
			t.Errorf("no scenario produces reason %s", r)
		}
		if reasons[r] && unproduced[r] {
			t.Errorf("reason %s is produced now: add its scenarios and drop it from unproduced", r)
		}
	}
	for _, v := range []detector.Verdict{
		detector.OK, detector.Inspected, detector.Intercepted, detector.Downgraded, detector.Plaintext,
		detector.CaptivePortal, detector.Blocked, detector.InvalidCert, detector.Unreachable, detector.DNSTampered,
		detector.TransparentProxy,
	} {
		if !verdicts[v] {
			t.Errorf("no scenario produces verdict %s", v)
		}
	}
}

func TestHasSCT(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	if !detector.HasSCT(p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true})) {
		t.Error("leaf with an SCT list: HasSCT = false")
	}
	if detector.HasSCT(p.leaf(p.corpCA, leafSpec{names: []string{labHost}})) {
		t.Error("leaf without SCTs: HasSCT = true")
	}
}

func TestVersionName(t *testing.T) {
	t.Parallel()
	for v, want := range map[uint16]string{0: "none", tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3"} {
		if got := detector.VersionName(v); got != want {
			t.Errorf("VersionName(%#x) = %q, want %q", v, got, want)
		}
	}
}

// TestRegressions holds situations a review found Classify getting wrong;
// each states the right answer and why.
func TestRegressions(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	forged := p.leaf(p.corpCA, leafSpec{names: []string{labHost}, notBefore: labNow.AddDate(0, 0, -3)})
	genuine := p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true})
	for _, c := range []struct {
		name string
		obs  detector.Observation
		exp  detector.Expectation
		pol  detector.Policy
		want detector.Verdict
		bug  string
	}{
		{
			name: "a forged chain that merely carries the approved CA is not approved inspection",
			// corpRoot (installed) signs; the approved Zscaler root is
			// appended to the presented chain but signs nothing in it.
			obs:  p.observe(labHost, p.system, forged, p.corpCA.cert, p.zRoot.cert),
			pol:  detector.Policy{ApprovedInspection: spkis(p.zRoot)},
			want: detector.Intercepted,
			bug:  "approvedCA/CAs (classify.go) accept any presented certificate, verified or not, so appending a public copy of the approved CA turns interception into 'inspected'",
		},
		{
			name: "appending the pinned CA to a forged chain does not satisfy the pin",
			obs:  p.observe(labHost, p.bareSystem, forged, p.corpCA.cert, p.publicCA.cert),
			exp:  detector.Expectation{CASPKI: spkis(p.publicCA)},
			want: detector.Intercepted,
			bug:  "pinned/CAs (classify.go) match pins against presented but unverified certificates, so ca-pin-mismatch is suppressed",
		},
		{
			name: "squid asking for proxy authentication is not a block",
			// Squid's 407 page is ERR_CACHE_ACCESS_DENIED, titled so.
			obs:  viaProxy(labHost, &detector.HTTPAnswer{Status: 407, Title: "ERROR: Cache Access Denied"}),
			want: detector.Unreachable,
			bug:  "plainFindings (failure.go) runs looksBlocked before the proxy case, and \"access denied\" is a block word",
		},
		{
			name: "a genuine leaf sent without its intermediate is not interception",
			obs:  p.observe(labHost, p.system, genuine),
			exp:  detector.Expectation{CASPKI: spkis(p.publicCA), SCT: true},
			want: detector.InvalidCert,
			bug:  "with no CA presented or verified, pinned() is false and ca-pin-mismatch (critical) fires; its detail names the leaf itself as the issuer (issuerOf falls back to Chain[0])",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := detector.Classify(c.obs, c.exp, c.pol, labNow)
			if got := detector.VerdictOf(fs); got != c.want {
				t.Errorf("verdict %s, want %s: %s; findings: %v", got, c.want, c.bug, reasonsOf(fs))
			}
		})
	}
}

// TestHiddenChainIsNotJudged: a capture of TLS 1.3 sees no certificate;
// that is not a server presenting none.
func TestHiddenChainIsNotJudged(t *testing.T) {
	obs := detector.Observation{Host: labHost, Port: 443, Path: detector.Path{Kind: detector.PathDirect},
		TLS: &detector.TLSState{Version: tls.VersionTLS13, ALPN: "h2", ChainHidden: true}}
	fs, _ := detector.Classify(obs, detector.Expectation{}, detector.Policy{}, labNow)
	if v := detector.VerdictOf(fs); v != detector.OK || len(fs) != 0 {
		t.Errorf("hidden chain: verdict %s, findings %v", v, fs)
	}
	obs.TLS.ChainHidden = false
	fs, _ = detector.Classify(obs, detector.Expectation{}, detector.Policy{}, labNow)
	if v := detector.VerdictOf(fs); v != detector.InvalidCert {
		t.Errorf("no chain presented: verdict %s, want invalid-cert", v)
	}
}

// TestProductNamedByBehaviour: squid and sslsplit sign with a CA the
// administrator names; their forged leaves still betray them. The chains
// are captures from the real programs (fingerprints/testdata/forged).
func TestProductNamedByBehaviour(t *testing.T) {
	for file, want := range map[string]string{"squid-transparent.pem": "squid", "sslsplit-transparent.pem": "sslsplit"} {
		data, err := os.ReadFile(filepath.Join("..", "fingerprints", "testdata", "forged", file))
		if err != nil {
			t.Fatal(err)
		}
		// The first host's chain as sent: blocks carry Host and Position
		// headers; "root" is what a store would add, not what was sent.
		var chain []*x509.Certificate
		host := ""
		for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
			if host == "" {
				host = b.Headers["Host"]
			}
			if b.Headers["Host"] != host || b.Headers["Position"] == "root" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			chain = append(chain, c)
		}
		obs := detector.Observation{Host: host, Port: 443, Path: detector.Path{Kind: detector.PathDirect},
			TLS: &detector.TLSState{Version: tls.VersionTLS13, Chain: chain, NameMatch: true,
				Public: detector.Verification{Failure: detector.FailureUnknownAuthority},
				System: detector.Verification{Failure: detector.FailureUnknownAuthority}}}
		fs, product := detector.Classify(obs, detector.Expectation{}, detector.Policy{}, chain[0].NotBefore.Add(time.Hour))
		if product != want || !slices.Contains(reasonsOf(fs), detector.ReasonKnownProduct) || detector.VerdictOf(fs) != detector.Intercepted {
			t.Errorf("%s: product %q, findings %v; want %s, intercepted", file, product, fs, want)
		}
	}
}
