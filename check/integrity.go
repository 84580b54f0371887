package check

import (
	"context"
	"errors"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/sshprobe"
)

// errNoProber is the failure of a target whose protocol the runner was
// given no prober for.
var errNoProber = errors.New("no prober for this protocol")

// observeIntegrity observes a target that does not speak TLS: an SSH
// server's host key, or a Go checksum database's tree. Neither carries the
// round's DNS answers: the SSH probe resolves as ssh does, and the checksum
// database is reached the way the go command reaches it, with the dialer
// its checker was given (the command gives it DNS, whose DialFrom shares
// the lookup of a probe of the same host where the system's resolution
// decides, and opens the connection early where the host was reached
// before).
func (r *Runner) observeIntegrity(ctx context.Context, t config.Target) detector.Observation {
	switch {
	case t.Protocol == detector.ProtocolSSH && r.SSH != nil:
		return r.SSH.Probe(ctx, sshprobe.Target{Host: t.Host, Port: t.Port, Address: t.Address, Fallback: t.Fallback})
	case t.Protocol == detector.ProtocolSumDB && r.SumDB != nil && t.SumDB != nil:
		return r.SumDB.Check(ctx, *t.SumDB)
	}
	return canceled(t, errNoProber)
}
