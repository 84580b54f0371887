package detector_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

// declaredConsts returns the values of the string constants of the named
// type declared in the package's source, so that a constant missing from
// Reasons or Verdicts fails a test instead of going unnoticed.
func declaredConsts(t *testing.T, typ string) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: %s constant with a non-literal value", fset.Position(v.Pos()), typ)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, s)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s constants found", typ)
	}
	slices.Sort(out)
	return out
}

func sortedStrings[S ~string](xs []S) []string {
	var out []string
	for _, x := range xs {
		out = append(out, string(x))
	}
	slices.Sort(out)
	return out
}

var kebab = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func TestReasonsListsEveryReason(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff(declaredConsts(t, "Reason"), sortedStrings(detector.Reasons)); diff != "" {
		t.Errorf("Reasons vs declared Reason constants (-declared +Reasons):\n%s", diff)
	}
	seen := map[detector.Reason]bool{}
	for _, r := range detector.Reasons {
		if s := fmt.Sprint(r); s != string(r) || !kebab.MatchString(s) {
			t.Errorf("reason %q does not print as a kebab-case word: %q", string(r), s)
		}
		if seen[r] {
			t.Errorf("reason %s listed twice", r)
		}
		seen[r] = true
	}
}

func TestVerdictsListsEveryVerdict(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff(declaredConsts(t, "Verdict"), sortedStrings(detector.Verdicts)); diff != "" {
		t.Errorf("Verdicts vs declared Verdict constants (-declared +Verdicts):\n%s", diff)
	}
	// The documented precedence: a lying resolver explains everything after
	// it; ok is what is left.
	want := []detector.Verdict{
		detector.DNSTampered, detector.Intercepted, detector.CaptivePortal, detector.Blocked,
		detector.Plaintext, detector.Downgraded, detector.InvalidCert, detector.Inspected,
		detector.TransparentProxy, detector.Unreachable, detector.OK,
	}
	if diff := cmp.Diff(want, detector.Verdicts); diff != "" {
		t.Errorf("Verdicts order (-want +got):\n%s", diff)
	}
	for _, v := range detector.Verdicts {
		if !kebab.MatchString(string(v)) {
			t.Errorf("verdict %q is not a kebab-case word", v)
		}
	}
}

// TestVerdictOfEachReason: what every reason implies on its own.
func TestVerdictOfEachReason(t *testing.T) {
	t.Parallel()
	want := map[detector.Reason]detector.Verdict{
		detector.ReasonSystemRootOnly:      detector.Intercepted,
		detector.ReasonCAPinMismatch:       detector.Intercepted,
		detector.ReasonCAChanged:           detector.OK,
		detector.ReasonKnownProduct:        detector.Intercepted,
		detector.ReasonLeafWithoutSCT:      detector.OK,
		detector.ReasonLeafKeyReused:       detector.Intercepted,
		detector.ReasonLeafSignedByRoot:    detector.OK,
		detector.ReasonLeafFresh:           detector.OK,
		detector.ReasonApprovedInspection:  detector.Inspected,
		detector.ReasonUntrustedChain:      detector.InvalidCert,
		detector.ReasonCertOtherName:       detector.CaptivePortal,
		detector.ReasonCertInvalid:         detector.InvalidCert,
		detector.ReasonVersionBelow:        detector.Downgraded,
		detector.ReasonALPNBelow:           detector.Downgraded,
		detector.ReasonWeakCipher:          detector.Downgraded,
		detector.ReasonDowngradeSentinel:   detector.Downgraded,
		detector.ReasonPlaintext:           detector.Plaintext,
		detector.ReasonBlockPage:           detector.Blocked,
		detector.ReasonPortalRedirect:      detector.CaptivePortal,
		detector.ReasonProxyHeaders:        detector.OK,
		detector.ReasonAddressOutOfRange:   detector.OK,
		detector.ReasonUnreachable:         detector.Unreachable,
		detector.ReasonDNSDenied:           detector.DNSTampered,
		detector.ReasonDNSServfail:         detector.OK,
		detector.ReasonDNSBogon:            detector.DNSTampered,
		detector.ReasonDNSMismatch:         detector.DNSTampered,
		detector.ReasonDNSDiffers:          detector.OK,
		detector.ReasonDNSWildcard:         detector.DNSTampered,
		detector.ReasonDNSTTLZero:          detector.OK,
		detector.ReasonDNSUnverified:       detector.OK,
		detector.ReasonHostsOverride:       detector.OK,
		detector.ReasonHostsBlock:          detector.Blocked,
		detector.ReasonTCPTerminatedNearby: detector.TransparentProxy,
		detector.ReasonTLSAnsweredEarly:    detector.TransparentProxy,
		detector.ReasonServerTTLChanged:    detector.OK,
		detector.ReasonCANameCloned:        detector.Intercepted,
		detector.ReasonCAChangedTogether:   detector.OK,
		detector.ReasonRTTSplit:            detector.OK,
		detector.ReasonSNIReset:            detector.Blocked,
		detector.ReasonSNIDropped:          detector.Blocked,
		// An approved interceptor stays inspected; check exits 1 for the
		// finding itself.
		detector.ReasonInterceptorAcceptsInvalidUpstream: detector.OK,
		detector.ReasonClockSkew:                         detector.InvalidCert,
		// integrity.go
		detector.ReasonSSHHostKeyMismatch:   detector.Intercepted,
		detector.ReasonSSHHostKeyUnverified: detector.OK,
		detector.ReasonSSHPortBlocked:       detector.Blocked,
		detector.ReasonSSHNotSSH:            detector.Plaintext,
		detector.ReasonSumDBSignature:       detector.Intercepted,
		detector.ReasonSumDBForked:          detector.Intercepted,
		detector.ReasonSumDBStale:           detector.OK,
		detector.ReasonSumDBBlocked:         detector.Blocked,
		detector.ReasonSumDBFirstTree:       detector.OK,
	}
	for _, r := range detector.Reasons {
		w, ok := want[r]
		if !ok {
			t.Errorf("reason %s: decide which verdict it implies and add it here", r)
			continue
		}
		if got := detector.VerdictOf([]detector.Finding{{Reason: r, Severity: detector.Critical}}); got != w {
			t.Errorf("VerdictOf(%s) = %s, want %s", r, got, w)
		}
		// Severity does not change the verdict.
		if got := detector.VerdictOf([]detector.Finding{{Reason: r, Severity: detector.Info}}); got != w {
			t.Errorf("VerdictOf(%s, info) = %s, want %s", r, got, w)
		}
	}
}

func TestVerdictOfPrecedence(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		reasons []detector.Reason
		want    detector.Verdict
	}{
		{nil, detector.OK},
		{[]detector.Reason{"no-such-reason"}, detector.OK},
		{[]detector.Reason{detector.ReasonCAChanged, detector.ReasonLeafWithoutSCT, detector.ReasonProxyHeaders, detector.ReasonAddressOutOfRange}, detector.OK},
		{[]detector.Reason{detector.ReasonVersionBelow, detector.ReasonSystemRootOnly}, detector.Intercepted},
		{[]detector.Reason{detector.ReasonSystemRootOnly, detector.ReasonCertOtherName}, detector.Intercepted},
		{[]detector.Reason{detector.ReasonCertOtherName, detector.ReasonBlockPage}, detector.CaptivePortal},
		{[]detector.Reason{detector.ReasonPlaintext, detector.ReasonBlockPage}, detector.Blocked},
		{[]detector.Reason{detector.ReasonDowngradeSentinel, detector.ReasonPlaintext}, detector.Plaintext},
		{[]detector.Reason{detector.ReasonUntrustedChain, detector.ReasonALPNBelow}, detector.Downgraded},
		{[]detector.Reason{detector.ReasonApprovedInspection, detector.ReasonVersionBelow}, detector.Downgraded},
		{[]detector.Reason{detector.ReasonApprovedInspection, detector.ReasonCertInvalid}, detector.InvalidCert},
		{[]detector.Reason{detector.ReasonUnreachable, detector.ReasonApprovedInspection}, detector.Inspected},
		{[]detector.Reason{detector.ReasonUnreachable, detector.ReasonCAChanged}, detector.Unreachable},
	} {
		var fs []detector.Finding
		for _, r := range c.reasons {
			fs = append(fs, detector.Finding{Reason: r, Severity: detector.Warning})
		}
		if got := detector.VerdictOf(fs); got != c.want {
			t.Errorf("VerdictOf(%v) = %s, want %s", c.reasons, got, c.want)
		}
		slices.Reverse(fs)
		if got := detector.VerdictOf(fs); got != c.want {
			t.Errorf("VerdictOf(reversed %v) = %s, want %s", c.reasons, got, c.want)
		}
	}
	// Every verdict a reason implies beats every later one in Verdicts.
	implied := map[detector.Verdict]detector.Reason{}
	for _, r := range detector.Reasons {
		if v := detector.VerdictOf([]detector.Finding{{Reason: r}}); v != detector.OK {
			if _, ok := implied[v]; !ok {
				implied[v] = r
			}
		}
	}
	for i, hi := range detector.Verdicts {
		for _, lo := range detector.Verdicts[i+1:] {
			rh, okh := implied[hi]
			rl, okl := implied[lo]
			if !okh || !okl {
				continue
			}
			if got := detector.VerdictOf([]detector.Finding{{Reason: rl}, {Reason: rh}}); got != hi {
				t.Errorf("%s (%s) with %s (%s) = %s, want %s", rh, hi, rl, lo, got, hi)
			}
		}
	}
}

func TestVerdictDetected(t *testing.T) {
	t.Parallel()
	clean := map[detector.Verdict]bool{detector.OK: true, detector.Inspected: true, detector.Unreachable: true}
	for _, v := range detector.Verdicts {
		if got := v.Detected(); got == clean[v] {
			t.Errorf("%s.Detected() = %v, want %v", v, got, !clean[v])
		}
	}
}

func TestSeverity(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    detector.Severity
		want string
	}{
		{detector.Info, "info"},
		{detector.Warning, "warning"},
		{detector.Critical, "critical"},
		{detector.Severity(-1), "unknown"},
		{detector.Severity(3), "unknown"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("Severity(%d).String() = %q, want %q", int(c.s), got, c.want)
		}
		b, err := c.s.MarshalText()
		if err != nil || string(b) != c.want {
			t.Errorf("Severity(%d).MarshalText() = %q, %v; want %q", int(c.s), b, err, c.want)
		}
	}
	if !(detector.Info < detector.Warning && detector.Warning < detector.Critical) {
		t.Error("severities are not ordered info < warning < critical")
	}
	b, err := json.Marshal(map[string]detector.Severity{"s": detector.Critical})
	if err != nil || string(b) != `{"s":"critical"}` {
		t.Errorf("severity in JSON = %s, %v", b, err)
	}
}

func TestFindingJSON(t *testing.T) {
	t.Parallel()
	f := detector.Finding{Reason: detector.ReasonLeafWithoutSCT, Severity: detector.Warning, Detail: `no SCTs "here"`}
	const want = `{"reason":"leaf-without-sct","severity":"warning","detail":"no SCTs \"here\""}`
	for _, v := range []any{f, &f} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("json.Marshal(%T) = %s, want %s", v, b, want)
		}
	}
	b, err := json.Marshal([]detector.Finding{{Reason: detector.ReasonUnreachable}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `[{"reason":"unreachable","severity":"info","detail":""}]`; got != want {
		t.Errorf("json.Marshal(findings) = %s, want %s", got, want)
	}
}

// negation words that may precede an insecure setting in a sentence that
// tells people what not to do.
var negations = []string{"instead of", "rather than", "do not", "don't", "never"}

// insecure matches advice that switches verification or integrity off.
var insecure = regexp.MustCompile(`(?i)insecureskipverify|sslverify\s*[= ]\s*false|http\.sslverify|strict-ssl\s*[= ]\s*false|node_tls_reject_unauthorized|--insecure\b|curl -k\b|--trusted-host|verify\s*=\s*false|goinsecure|gonosumdb|gonosumcheck|gosumdb\s*=\s*off|gonoproxy|-insecure\b|disabl\w* (tls |ssl |certificate )?verif|insecure settings|insecure`)

// insecureAdvice returns the insecure settings text mentions outside a
// sentence that says not to use them.
func insecureAdvice(text string) []string {
	var bad []string
	for _, sentence := range strings.SplitAfter(text, ". ") {
		for _, loc := range insecure.FindAllStringIndex(sentence, -1) {
			before := strings.ToLower(sentence[:loc[0]])
			if !slices.ContainsFunc(negations, func(n string) bool { return strings.Contains(before, n) }) {
				bad = append(bad, sentence[loc[0]:loc[1]])
			}
		}
	}
	return bad
}

func TestInsecureAdvice(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]int{
		"Set GOINSECURE=goproxy.lab.example.":                              1,
		"Use InsecureSkipVerify: true in the client.":                      1,
		"Run git config --global http.sslVerify false. Then retry.":        1,
		"npm config set strict-ssl=false":                                  1,
		"Export NODE_TLS_REJECT_UNAUTHORIZED=0 for now.":                   1,
		"Install the CA instead of disabling verification.":                0,
		"Use HTTPS_PROXY rather than http:// URLs, GOINSECURE or GOPROXY.": 0,
		"Do not route around it with insecure settings.":                   0,
		"Install the CA. Then set GOINSECURE, it is not evidence.":         1,
	} {
		if got := insecureAdvice(text); len(got) != want {
			t.Errorf("insecureAdvice(%q) = %q, want %d hits", text, got, want)
		}
	}
}

func TestRemediation(t *testing.T) {
	t.Parallel()
	obs := failed(labHost, detector.FailureTimeout, "i/o timeout")
	caVars := []string{"SSL_CERT_FILE", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"}
	for _, v := range detector.Verdicts {
		for _, product := range []string{"", "Zscaler"} {
			text := detector.Remediation(v, obs, product, nil)
			if v == detector.OK {
				if text != "" {
					t.Errorf("Remediation(ok) = %q, want none", text)
				}
				continue
			}
			if strings.TrimSpace(text) == "" {
				t.Errorf("Remediation(%s) is empty", v)
				continue
			}
			if bad := insecureAdvice(text); len(bad) > 0 {
				t.Errorf("Remediation(%s) recommends %q: %q", v, bad, text)
			}
			switch v {
			case detector.Intercepted, detector.Inspected, detector.InvalidCert:
				for _, s := range caVars {
					if !strings.Contains(text, s) {
						t.Errorf("Remediation(%s) does not name %s: %q", v, s, text)
					}
				}
			}
			if product != "" && (v == detector.Intercepted || v == detector.Inspected) && !strings.Contains(text, product) {
				t.Errorf("Remediation(%s, %q) does not name the product: %q", v, product, text)
			}
		}
	}
	if text := detector.Remediation(detector.Intercepted, obs, "", nil); !strings.Contains(text, labHost) || !strings.Contains(text, "a middlebox") {
		t.Errorf("Remediation(intercepted) without a product = %q", text)
	}
	if text := detector.Remediation(detector.Unreachable, obs, "", nil); !strings.Contains(text, string(detector.FailureTimeout)) || !strings.Contains(text, "not evidence of interception") {
		t.Errorf("Remediation(unreachable) = %q", text)
	}
	if text := detector.Remediation(detector.Downgraded, obs, "", nil); !strings.Contains(text, "Do not lower") {
		t.Errorf("Remediation(downgraded) = %q", text)
	}
	// GOINSECURE is named once, as what not to use instead of the proxy.
	if text := detector.Remediation(detector.Plaintext, obs, "", nil); !regexp.MustCompile(`rather than [^.]*GOINSECURE`).MatchString(text) {
		t.Errorf("Remediation(plaintext) = %q", text)
	}
}

func TestPathString(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    detector.Path
		want string
	}{
		{detector.Path{Kind: detector.PathDirect}, "direct"},
		{detector.Path{}, "direct"},
		{detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"}, "proxy proxy.corp.example:3128"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.p, got, c.want)
		}
	}
}
