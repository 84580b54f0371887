package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/detector"
)

// manyResults is results plus what a laptop without DNS shows: several
// hosts failing the same way but for their names, a second timeout like
// ghcr.io's, and hosts that are plainly ok.
func manyResults(t *testing.T) []detector.Result {
	rs := results(t)
	var cases []detector.Case
	for _, h := range []string{"proxy.lab.example", "git.lab.example", "crates.lab.example"} {
		cases = append(cases, detector.Case{Source: "toolchain", Obs: detector.Observation{
			Host: h, Port: 443, Path: detector.Path{Kind: detector.PathDirect},
			Failure: detector.FailureDNS, FailureDetail: fmt.Sprintf("resolving %s with system udp://192.0.2.53:53: NXDOMAIN", h),
		}})
	}
	cases = append(cases, detector.Case{Source: "--target", Obs: detector.Observation{
		Host: "quay.lab.example", Port: 443, Path: detector.Path{Kind: detector.PathDirect},
		Failure: detector.FailureTimeout, FailureDetail: "context deadline exceeded",
	}})
	rs = append(rs, detector.Judge(cases, detector.Policy{}, rs[0].Obs.TLS.Chain[0].NotBefore)...)
	for _, h := range []string{"registry.lab.example", "index.lab.example"} {
		rs = append(rs, detector.Result{Obs: detector.Observation{Host: h, Port: 443}, Verdict: detector.OK})
	}
	return rs
}

func TestBriefGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Brief(&buf, manyResults(t), Options{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "brief.txt", buf.Bytes())

	buf.Reset()
	if err := Brief(&buf, manyResults(t), Options{Width: 80}); err != nil {
		t.Fatal(err)
	}
	golden(t, "brief-80.txt", buf.Bytes())
	for i, line := range strings.Split(buf.String(), "\n") {
		// A line wider than 80 columns may only be one word too long to break.
		if n := len([]rune(line)); n > 80 && strings.Contains(strings.TrimSpace(line), " ") && !strings.HasPrefix(strings.TrimSpace(line), "[") {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, line)
		}
	}
}

func TestBriefOrderAndColour(t *testing.T) {
	var buf bytes.Buffer
	if err := Brief(&buf, manyResults(t), Options{Colour: true}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "10 targets: 1 dns-tampered, 1 intercepted, 1 plaintext, 5 unreachable, 2 ok\n") {
		t.Errorf("does not start with the tally:\n%s", out)
	}
	order := []string{"dns-tampered" + reset + " pypi.org", "intercepted" + reset + " github.com", "plaintext" + reset + " repo.maven",
		"3 hosts " + bold + yellow + "unreachable", "2 hosts " + bold + yellow + "unreachable", green + "ok" + reset}
	last := -1
	for _, s := range order {
		i := strings.Index(out, s)
		if i < last {
			t.Errorf("%q is out of order (at %d, after %d):\n%s", s, i, last, out)
		}
		last = i
	}
	if strings.Count(out, "could not be reached") != 2 {
		t.Errorf("identical failures not collapsed:\n%s", out)
	}
}
