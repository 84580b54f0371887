package resolver

import (
	"encoding/hex"
	"io"
)

// canaryZone holds the canary names. A resolver that answers every name
// (an ISP's NXDOMAIN redirection, a sinkhole, a portal) shows itself by
// answering one that cannot exist. That name must reach the resolver like
// any other: special-use names (.invalid, .test, .localhost; RFC 6761) may
// be answered locally by a stub or forwarder in front of it, some stubs
// (systemd-resolved) never send single-label names to unicast DNS, and
// NXDOMAIN redirection often spares names under TLDs that do not exist.
// And honest resolvers must answer it NXDOMAIN. A random label under
// example.com meets both: reserved by RFC 2606, it is an ordinary
// delegated .com zone that IANA runs without a wildcard. Should that
// change, the reference resolvers would answer the canary too, and the
// detector concludes only when they do not.
const canaryZone = ".example.com."

// CanaryName returns a name that cannot exist: a random 16-hex-digit label
// (64 bits from r, so no cache holds it) under example.com. It carries no
// mitmwatch marking that a filter could exempt. Should r fail, the missing
// bytes read as zeros: still a name that does not exist, only a guessable
// one.
func CanaryName(r io.Reader) string {
	var b [8]byte
	io.ReadFull(r, b[:])
	return hex.EncodeToString(b[:]) + canaryZone
}
