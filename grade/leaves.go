package grade

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// day is the unit of certificate lifetimes.
const day = 24 * time.Hour

// publicLifetimes are the longest lifetimes the CA/Browser Forum's Baseline
// Requirements allow a publicly trusted TLS certificate issued from a date
// on (latest first): 398 days since September 2020, then 200, 100 and 47
// days from ballot SC-081's dates. A forged leaf valid for longer outlives
// any public certificate it stands for.
var publicLifetimes = []struct {
	from time.Time
	max  time.Duration
}{
	{time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC), 47 * day},
	{time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC), 100 * day},
	{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 200 * day},
	{time.Date(2020, 9, 1, 0, 0, 0, 0, time.UTC), 398 * day},
	{time.Date(2018, 3, 1, 0, 0, 0, 0, time.UTC), 825 * day},
}

// publicLifetime is the longest lifetime of a public certificate issued at
// t; zero before 2018, when it was longer than anything forged.
func publicLifetime(t time.Time) time.Duration {
	for _, p := range publicLifetimes {
		if !t.Before(p.from) {
			return p.max
		}
	}
	return 0
}

// lifetime is a certificate's validity period.
func lifetime(c *x509.Certificate) time.Duration { return c.NotAfter.Sub(c.NotBefore) }

// leafChecks judges the leaves the interceptor forged: how they are
// signed, their keys, and whether one key serves every host, from all of
// them; their lifetimes only from those of hosts with a valid certificate
// of their own (the targets, the control): what an interceptor issues for
// a host it refuses stands for no certificate.
func (f Found) leafChecks(valid, all []Leaf) []Check {
	if len(all) == 0 {
		none := "no forged leaf was seen"
		return []Check{
			{CheckSignature, Inconclusive, none}, {CheckKey, Inconclusive, none},
			{CheckValidity, Inconclusive, none}, {CheckKeyReuse, Inconclusive, none},
		}
	}
	validity := Check{CheckValidity, Inconclusive, "no forged leaf of a host with a valid certificate was seen"}
	if len(valid) > 0 {
		validity = validityCheck(valid)
	}
	return []Check{signatureCheck(all), keyCheck(all), validity, f.reuseCheck(all)}
}

// weakSignatures are algorithms a forged leaf must not be signed with.
var weakSignatures = []x509.SignatureAlgorithm{
	x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
}

func signatureCheck(leaves []Leaf) Check {
	var weak, seen []string
	for _, l := range leaves {
		alg := l.Cert.SignatureAlgorithm.String()
		if slices.Contains(weakSignatures, l.Cert.SignatureAlgorithm) {
			weak = append(weak, fmt.Sprintf("%s (%s)", l.Host, alg))
		}
		if !slices.Contains(seen, alg) {
			seen = append(seen, alg)
		}
	}
	if len(weak) > 0 {
		return Check{CheckSignature, Weak, "forged leaves signed with a broken hash: " + strings.Join(weak, ", ")}
	}
	return Check{CheckSignature, Sound, "forged leaves signed with " + strings.Join(seen, ", ")}
}

// keyName names a public key's type and size; weak is true below RSA 2048
// and EC 256.
func keyName(pub any) (name string, weak bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen()), k.N.BitLen() < 2048
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name, k.Curve.Params().BitSize < 256
	case ed25519.PublicKey:
		return "Ed25519", false
	}
	return fmt.Sprintf("%T", pub), true
}

func keyCheck(leaves []Leaf) Check {
	var weak, seen []string
	for _, l := range leaves {
		name, w := keyName(l.Cert.PublicKey)
		if w {
			weak = append(weak, fmt.Sprintf("%s (%s)", l.Host, name))
		}
		if !slices.Contains(seen, name) {
			seen = append(seen, name)
		}
	}
	if len(weak) > 0 {
		return Check{CheckKey, Weak, "forged leaves with weak keys: " + strings.Join(weak, ", ")}
	}
	return Check{CheckKey, Sound, "forged leaf keys: " + strings.Join(seen, ", ")}
}

func validityCheck(leaves []Leaf) Check {
	longest := leaves[0]
	for _, l := range leaves[1:] {
		if lifetime(l.Cert) > lifetime(longest.Cert) {
			longest = l
		}
	}
	got := lifetime(longest.Cert)
	limit := publicLifetime(longest.Cert.NotBefore)
	days := func(d time.Duration) int { return int((d + day - 1) / day) }
	if limit > 0 && got > limit+time.Second {
		return Check{CheckValidity, Weak, fmt.Sprintf(
			"the forged leaf for %s is valid for %d days, longer than a publicly trusted certificate issued on %s may be (%d days): it outlives the certificate it stands for",
			longest.Host, days(got), longest.Cert.NotBefore.UTC().Format(time.DateOnly), days(limit))}
	}
	return Check{CheckValidity, Sound, fmt.Sprintf("the longest-lived forged leaf (%s) is valid for %d days", longest.Host, days(got))}
}

// reuseCheck finds one key behind the leaves of several hosts, the signal
// detector calls leaf-key-reused; worse still when that key is the CA's
// own.
func (f Found) reuseCheck(leaves []Leaf) Check {
	hosts := map[detector.SPKI][]string{}
	for _, l := range leaves {
		k := detector.SPKIOf(l.Cert)
		if !slices.Contains(hosts[k], l.Host) {
			hosts[k] = append(hosts[k], l.Host)
		}
	}
	var all []string
	for _, l := range leaves {
		if !slices.Contains(all, l.Host) {
			all = append(all, l.Host)
		}
	}
	if len(all) < 2 {
		return Check{CheckKeyReuse, Inconclusive, "a forged leaf for one host only: reuse cannot show"}
	}
	var worst detector.SPKI // the first of the most shared keys, in the leaves' order
	for _, l := range leaves {
		if k := detector.SPKIOf(l.Cert); len(hosts[k]) > len(hosts[worst]) {
			worst = k
		}
	}
	if n := len(hosts[worst]); n > 1 {
		whose := "one key"
		if worst == f.SPKI {
			whose = "the CA's own key"
		}
		names := hosts[worst]
		if len(names) > 5 {
			names = append(slices.Clone(names[:5]), fmt.Sprintf("and %d more", len(names)-5))
		}
		return Check{CheckKeyReuse, Weak, fmt.Sprintf("%s (SPKI %s) behind the forged leaves of %d hosts: %s", whose, worst, n, strings.Join(names, ", "))}
	}
	return Check{CheckKeyReuse, Sound, fmt.Sprintf("a key of its own for each of %d hosts", len(all))}
}
