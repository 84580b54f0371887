package trust

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// TestVerifyAtValidTime: a chain that fails only for the time carries its
// verification at a moment it is valid, so a wrong clock can be told from
// a chain nothing trusts.
func TestVerifyAtValidTime(t *testing.T) {
	t.Parallel()
	root := newRoot(t, "Clock Test Root")
	pool := x509.NewCertPool()
	pool.AddCert(root)
	later := time.Now().Add(3 * time.Hour)
	for _, c := range []struct {
		name   string
		roots  *x509.CertPool
		at     time.Time
		want   detector.Failure
		within *detector.Failure // nil: no AtValidTime
	}{
		{"valid now", pool, time.Now(), detector.FailureNone, nil},
		{"trusted, clock ahead", pool, later, detector.FailureExpired, new(detector.FailureNone)},
		{"untrusted, clock ahead", nil, later, detector.FailureExpired, new(detector.FailureUnknownAuthority)},
		{"untrusted, clock right", nil, time.Now(), detector.FailureUnknownAuthority, nil},
	} {
		v := Verify([]*x509.Certificate{root}, c.roots, c.at)
		if v.Failure != c.want {
			t.Errorf("%s: failure %q, want %q", c.name, v.Failure, c.want)
		}
		switch {
		case c.within == nil && v.AtValidTime != nil:
			t.Errorf("%s: AtValidTime %+v, want none", c.name, *v.AtValidTime)
		case c.within != nil && v.AtValidTime == nil:
			t.Errorf("%s: no AtValidTime", c.name)
		case c.within != nil && v.AtValidTime.Failure != *c.within:
			t.Errorf("%s: AtValidTime failure %q, want %q", c.name, v.AtValidTime.Failure, *c.within)
		}
	}
}
