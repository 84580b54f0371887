//go:build !linux

package probe

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

func hopProbe(context.Context, netip.Addr, int, time.Duration) (detector.HopProbe, error) {
	return detector.HopProbe{}, errors.New("no datagram sent: reading ICMP errors without privilege needs Linux (IP_RECVERR)")
}
