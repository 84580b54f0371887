package detector

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the cause that looks like interception and is not: a
// wrong clock. Every certificate then seems expired (or not yet valid), so
// every TLS client on the machine fails, and people reach for the switch
// that turns verification off. The evidence is the certificates' own
// validity periods, compared across targets:
//
//	every chain seen lies outside its validity on the same side of the clock,
//	and at least minSkewedHosts of them verify at a moment inside it   → clock-skew
//
// A target the clock explains is then judged as it would be under a right
// clock (Verification.AtValidTime): a sound chain gets only the clock-skew
// finding, while a forged one is still judged a forgery.

// minSkewedHosts is how many hosts' chains must be sound but for the time
// before the clock, rather than the certificates, is named.
const minSkewedHosts = 2

// ValidityOf is the period in which every certificate of chain is valid:
// the latest NotBefore and the earliest NotAfter; false when the chain is
// empty or the periods do not overlap.
func ValidityOf(chain []*x509.Certificate) (from, until time.Time, ok bool) {
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	return from, until, len(chain) > 0 && from.Before(until)
}

// side says where now lies against a chain's validity: +1 after it (the
// chain looks expired), -1 before it (not yet valid), 0 inside it, or when
// the chain has no common validity at all or was not seen.
func side(obs Observation, now time.Time) int {
	if obs.TLS == nil || len(obs.TLS.Chain) == 0 {
		return 0
	}
	from, until, ok := ValidityOf(obs.TLS.Chain)
	switch {
	case !ok:
		return 0
	case now.After(until):
		return 1
	case now.Before(from):
		return -1
	}
	return 0
}

// soundAtValidTime reports whether a store vouches for the chain at a
// moment the certificates are valid.
func soundAtValidTime(st *TLSState) bool {
	for _, v := range []Verification{st.System, st.Public} {
		if v.AtValidTime != nil && trusted(*v.AtValidTime) {
			return true
		}
	}
	return false
}

// clockSkew returns the clock-skew finding for c when the certificates seen
// across targets say the clock, not the path, is wrong; nil otherwise.
func clockSkew(c Case, others []*Case, now time.Time) *Finding {
	dir := side(c.Obs, now)
	if dir == 0 {
		return nil
	}
	type key struct {
		host string
		port int
	}
	seen := map[key]bool{}
	var sound []string
	var from, until time.Time // the validity every sound chain shares
	for _, o := range append([]*Case{&c}, others...) {
		if o == nil || o.Obs.TLS == nil || len(o.Obs.TLS.Chain) == 0 || o.Obs.TLS.ChainHidden {
			continue
		}
		k := key{o.Obs.Host, o.Obs.Port}
		if seen[k] {
			continue
		}
		seen[k] = true
		if side(o.Obs, now) != dir {
			// A chain valid now, or on the other side of the clock: the
			// clock does not explain what this one shows.
			return nil
		}
		if !soundAtValidTime(o.Obs.TLS) {
			continue
		}
		f, u, _ := ValidityOf(o.Obs.TLS.Chain)
		if len(sound) == 0 || f.After(from) {
			from = f
		}
		if len(sound) == 0 || u.Before(until) {
			until = u
		}
		sound = append(sound, o.Obs.Host)
	}
	if len(sound) < minSkewedHosts {
		return nil
	}
	return &Finding{ReasonClockSkew, Critical, skewDetail(now, dir, from, until, sound)}
}

// skewDetail names the clock, by how much it is off at least, and the
// hosts that show it.
func skewDetail(now time.Time, dir int, from, until time.Time, hosts []string) string {
	const day = "2006-01-02"
	shown := slices.Sorted(slices.Values(hosts))
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("%d more", len(hosts)-5))
	}
	if !from.Before(until) {
		// The sound chains share no moment: name the nearest bound.
		from, until = until, from
	}
	var off time.Duration
	word := "ahead"
	if dir > 0 {
		off = now.Sub(until)
	} else {
		off, word = from.Sub(now), "behind"
	}
	return fmt.Sprintf("this machine's clock reads %s, but the chains of %s are all valid only between %s and %s, and verify then: the clock is at least %s %s. Every TLS client here fails the same way (certificate expired or not yet valid); that is no sign of interception",
		now.UTC().Format(time.RFC3339), strings.Join(shown, ", "), from.UTC().Format(day), until.UTC().Format(day), roughly(off), word)
}

// roughly renders a duration in the unit people set clocks by.
func roughly(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	}
	return d.Round(time.Second).String()
}

// atValidTime is obs as it would have been verified under a right clock:
// each store's outcome at a moment the chain is valid, where one was taken.
func atValidTime(obs Observation) Observation {
	if obs.TLS == nil {
		return obs
	}
	st := *obs.TLS
	for _, v := range []*Verification{&st.Public, &st.System} {
		if v.Failure == FailureExpired && v.AtValidTime != nil {
			*v = *v.AtValidTime
		}
	}
	obs.TLS = &st
	return obs
}

// HasClockSkew reports whether the findings name a wrong clock as the
// cause of the target's certificate failures.
func HasClockSkew(findings []Finding) bool {
	for _, f := range findings {
		if f.Reason == ReasonClockSkew {
			return true
		}
	}
	return false
}
