package daemon

import (
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// The service probes as check does: a filter that drops the ClientHello
// naming one target makes it blocked, decided well before the probe's
// timeout, while another name through the same filter stays ok.
func TestSNIBlockedTarget(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	f, err := lab.NewSNIFilter(l.env.Origin.Addr(), lab.SNIDrop, "blocked.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(f)
	blocked, open := l.target("blocked.lab.example", 1), l.target("open.lab.example", 2)
	l.router.route(blocked.Address, f.Addr())
	l.router.route(open.Address, f.Addr())
	const timeout = 5 * time.Second
	d, _ := l.daemon(t, &loader{cfg: l.config(time.Hour, timeout, blocked, open)}, "")
	run(t, d)
	waitFor(t, d, wait, "blocked, and the other target ok", func() bool {
		return verdictIs(d, blocked.Key(), detector.Blocked)() && verdictIs(d, open.Key(), detector.OK)()
	})
	r, _ := rec(d, blocked.Key())
	if !hasReason(r.Findings, detector.ReasonSNIDropped) {
		t.Errorf("findings %v lack %s", r.Findings, detector.ReasonSNIDropped)
	}
	t.Logf("probe took %v", r.Duration)
	if r.Duration >= timeout/2 {
		t.Errorf("the probe took %v with a timeout of %v: it waited rather than decided", r.Duration, timeout)
	}
}
