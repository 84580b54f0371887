package daemon

import (
	"slices"
	"time"
	"unicode/utf8"
)

// An interceptor can present a new CA on every connection. The exporter
// shows one mitmwatch_chain_info series per target at any scrape, but
// Prometheus keeps every label set it ever stored, so a CA per probe would be
// a new series per probe, forever. The daemon therefore remembers the last
// few distinct chains of each target: once more than maxChains distinct
// chains (issuer and root key) were seen within chainWindow, the target's
// chain is exported as unsettled (issuer_cn and root_spki_sha256 both
// "(changing)") until the window holds maxChains or fewer again. A target
// then adds at most maxChains+1 chain_info series per chainWindow however
// its path behaves, while a real rotation, or a host served by two CAs
// at once, keeps its names.
const (
	maxChains   = 4
	chainWindow = 24 * time.Hour
)

// chainSeen is one distinct chain of a target and when it was last seen.
type chainSeen struct {
	id string
	at time.Time
}

// noteChain records that id was seen at now and reports whether the target's
// chain is unsettled. It keeps at most maxChains+1 entries: enough to know
// the bound is passed, never more.
func noteChain(seen []chainSeen, id string, now time.Time) ([]chainSeen, bool) {
	seen = slices.DeleteFunc(seen, func(c chainSeen) bool { return c.id == id || now.Sub(c.at) > chainWindow })
	seen = append(seen, chainSeen{id: id, at: now})
	if len(seen) > maxChains+1 {
		seen = slices.Delete(seen, 0, len(seen)-(maxChains+1)) // oldest first: appended in time order
	}
	return seen, len(seen) > maxChains
}

// maxLogValue bounds a value from the network in a log event (an issuer's
// name in the evidence can be kilobytes): a line an operator can read.
const maxLogValue = 256

// clip cuts s to at most maxLogValue bytes on a rune boundary, marked "…".
// Escaping is the log handler's job (logfmt and JSON both quote).
func clip(s string) string {
	if len(s) <= maxLogValue {
		return s
	}
	cut := maxLogValue - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
