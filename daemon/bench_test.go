package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

// Every probe is judged with the latest observations of all targets as
// context (JudgeAmong), so a probe costs one classification plus, for a
// chain not publicly trusted, a pass over the others. Measured to keep an eye on the daemon's CPU budget (200
// targets on a 30 s interval).
func BenchmarkJudge200(b *testing.B) {
	l := newLab(b)
	var targets []config.Target
	for i := range 200 {
		tg := l.target(fmt.Sprintf("h%d.lab.example", i), i%250+1)
		l.router.route(tg.Address, l.env.Origin.Addr())
		targets = append(targets, tg)
	}
	r := l.newRunner(l.config(time.Minute, 5*time.Second, targets...))
	obs := r.Observe(context.Background(), targets)
	for i, o := range obs {
		if o.TLS == nil {
			b.Fatalf("%s: %s", targets[i].Key(), o.FailureDetail)
		}
	}
	others := make([]*detector.Case, 0, len(obs)-1)
	for i := range obs[1:] {
		c := check.Case(targets[1+i], obs[1+i])
		others = append(others, &c)
	}
	c := check.Case(targets[0], obs[0])
	for b.Loop() {
		r.JudgeAmong(c, others)
	}
}
