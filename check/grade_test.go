package check

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/grade"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/probe"
)

// gradeLab is the in-process lab of grading: a genuine origin for the
// targets and the control, an origin per defect for the test hosts, and a
// real third-party interceptor (goproxy) routing to them, approved.
type gradeLab struct {
	pki      *lab.PKI
	origin   *lab.Origin
	ic       *lab.Interceptor
	settings config.Grade
	dials    atomic.Int64
}

func newGradeLab(t *testing.T, insecure bool) *gradeLab {
	t.Helper()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	g := &gradeLab{pki: pki}
	start := func(opts lab.OriginOptions) *lab.Origin {
		o, err := lab.NewOrigin(pki, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close() })
		return o
	}
	g.origin = start(lab.OriginOptions{})
	routes := lab.Routes{"github.com": g.origin.Addr(), "control.grade.example": g.origin.Addr()}
	g.settings = config.Grade{Mode: config.GradeAuto, Interval: time.Hour,
		Control: &grade.TestHost{Key: "control", Host: "control.grade.example", Port: 443}}
	for _, d := range lab.Defects {
		o := start(lab.OriginOptions{Leaf: func(name string) (*tls.Certificate, error) { return pki.Broken(d, name) }})
		host := string(d) + ".grade.example"
		routes[host] = o.Addr()
		g.settings.TestHosts = append(g.settings.TestHosts, grade.TestHost{Key: string(d), Host: host, Port: 443})
	}
	if g.ic, err = lab.NewInterceptor(pki, lab.InterceptorOptions{Routes: routes, InsecureUpstream: insecure}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.ic.Close() })
	return g
}

// DialContext counts every connection grading or probing opens.
func (g *gradeLab) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	g.dials.Add(1)
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// runner probes through the interceptor the hosts proxied says, directly
// (to the genuine origin) the others.
func (g *gradeLab) runner(proxied func(host string) bool) *Runner {
	return &Runner{
		Prober: &probe.Prober{PublicRoots: g.pki.PublicPool(), SystemRoots: g.pki.SystemPool(), Dialer: g,
			Proxy: func(u *url.URL) (*url.URL, error) {
				if proxied(u.Hostname()) {
					return g.ic.URL(), nil
				}
				return nil, nil
			}},
		Policy:      detector.Policy{ApprovedInspection: []detector.SPKI{detector.SPKIOf(g.pki.EnterpriseRoot.Cert)}},
		Concurrency: 8,
		Timeout:     5 * time.Second,
	}
}

func everything(string) bool { return true }

func results(c []grade.Check) map[string]grade.Result {
	out := map[string]grade.Result{}
	for _, ch := range c {
		out[ch.Name] = ch.Result
	}
	return out
}

func details(c []grade.Check) string {
	var b strings.Builder
	for _, ch := range c {
		b.WriteString("\n  " + ch.Name + " " + string(ch.Result) + ": " + ch.Detail)
	}
	return b.String()
}

// TestGradeThroughInterceptor runs a round and grades the approved
// interceptor behind it, one that checks the upstream and one that does
// not: the real probe → judge → grade path.
func TestGradeThroughInterceptor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		insecure bool
		upstream grade.Result
		grade    grade.Grade
	}{
		// goproxy completes the handshake with a leaf this machine
		// trusts, then closes the connection when the upstream fails; its
		// leaves live 395 days (B).
		{"validates upstream", false, grade.Blocked, grade.B},
		{"accepts any upstream", true, grade.ReSigned, grade.F},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := newGradeLab(t, c.insecure)
			r := g.runner(everything)
			targets := []config.Target{{Host: "github.com", Port: 443}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res := r.Run(ctx, targets)
			if res[0].Verdict != detector.Inspected {
				t.Fatalf("verdict %s %v, want inspected", res[0].Verdict, res[0].Findings)
			}
			ics := r.Grade(ctx, targets, res, g.settings)
			if len(ics) != 1 {
				t.Fatalf("%d interceptors, want 1", len(ics))
			}
			ic := ics[0]
			if ic.Path.Kind != detector.PathProxy || !ic.Approved || ic.SPKI != detector.SPKIOf(g.pki.EnterpriseRoot.Cert) ||
				!cmp.Equal(ic.Targets, []string{"github.com:443"}) {
				t.Errorf("interceptor %+v", ic.Found)
			}
			want := map[string]grade.Result{
				"upstream-expired": c.upstream, "upstream-self-signed": c.upstream,
				"upstream-untrusted-root": c.upstream, "upstream-wrong-host": c.upstream,
				// Go's TLS server refuses old versions and suites (and ECDSA
				// leaves cannot do RSA key exchange); goproxy gives each
				// host a key of its own, valid for 395 days from 30 days
				// back.
				grade.CheckTLS10: grade.Refused, grade.CheckTLS11: grade.Refused,
				grade.CheckWeakCiphers: grade.Refused, grade.CheckNoForwardSecrecy: grade.Refused,
				grade.CheckSignature: grade.Sound, grade.CheckKey: grade.Sound,
				grade.CheckValidity: grade.Weak, grade.CheckKeyReuse: grade.Sound,
			}
			if diff := cmp.Diff(want, results(ic.Checks)); diff != "" || ic.Grade != c.grade {
				t.Errorf("grade %s, want %s; results (-want +got):\n%s%s", ic.Grade, c.grade, diff, details(ic.Checks))
			}
			annotated := grade.Annotate(res, ics)
			if got := annotated[0].Findings[len(annotated[0].Findings)-1].Reason == detector.ReasonInterceptorAcceptsInvalidUpstream; got != c.insecure {
				t.Errorf("finding interceptor-accepts-invalid-upstream: %v, want %v", got, c.insecure)
			}
		})
	}
}

// TestGradeOnlyWhenIntercepted: nothing intercepted, no handshake; grading
// turned off, none either; "always" grades what the control reveals.
func TestGradeOnlyWhenIntercepted(t *testing.T) {
	t.Parallel()
	g := newGradeLab(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	grading := func(host string) bool { return strings.HasSuffix(host, ".grade.example") }
	clean := g.runner(grading)
	targets := []config.Target{{Host: "github.com", Port: 443, Address: g.origin.Addr()}}
	res := clean.Run(ctx, targets)
	if res[0].Verdict != detector.OK {
		t.Fatalf("verdict %s, want ok", res[0].Verdict)
	}
	before := g.dials.Load()
	if ics := clean.Grade(ctx, targets, res, g.settings); ics != nil || g.dials.Load() != before {
		t.Errorf("auto with nothing intercepted: %d interceptors, %d connections", len(ics), g.dials.Load()-before)
	}

	never := g.settings
	never.Mode = config.GradeNever
	through := g.runner(everything)
	res2 := through.Run(ctx, []config.Target{{Host: "github.com", Port: 443}})
	before = g.dials.Load()
	if ics := through.Grade(ctx, nil, res2, never); ics != nil || g.dials.Load() != before {
		t.Errorf("never: %d interceptors, %d connections", len(ics), g.dials.Load()-before)
	}
	// A Config not made by config.Parse has the zero section: off.
	if ics := through.Grade(ctx, nil, res2, config.Grade{}); ics != nil || g.dials.Load() != before {
		t.Errorf("zero: %d interceptors, %d connections", len(ics), g.dials.Load()-before)
	}

	always := g.settings
	always.Mode = config.GradeAlways
	ics := clean.Grade(ctx, targets, res, always)
	if len(ics) != 1 || len(ics[0].Targets) != 0 || ics[0].Grade != grade.B || ics[0].Path.Kind != detector.PathProxy {
		t.Fatalf("always: %+v", ics)
	}
	if r := results(ics[0].Checks); r[grade.CheckTLS10] != grade.Refused || r["upstream-expired"] != grade.Blocked {
		t.Errorf("always: checks%s", details(ics[0].Checks))
	}
}
