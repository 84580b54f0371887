package detector

import (
	"fmt"
	"slices"
	"time"
)

// This file holds the rule for a Go checksum database. Its tree heads are
// notes signed with the database's key and its tiles prove that each tree
// contains the one before, so an interceptor that terminates TLS still
// cannot forge either: what it can do is block the database, replay an old
// head, or (holding the key, or being the log) show this machine another
// history. Each is a finding with the tree sizes and hashes as evidence:
//
//	a head whose signature does not verify with the database's key     → sumdb-signature-invalid (critical): intercepted
//	a verified head that does not extend the tree kept from before       → sumdb-tree-forked (critical): intercepted
//	  (the same size with another hash, a smaller tree, a failed proof)
//	a verified head the size of the kept one for longer than max_age     → sumdb-tree-stale (warning)
//	no head read while a module proxy in GOPROXY answered                → sumdb-blocked (critical): blocked
//	no head read, nothing answered                                       → unreachable (info)
//	the tiles for the proof could not be read                            → unreachable (info)
//	the first tree seen                                                  → sumdb-tree-first-seen (info)
//
// A forged or forked log is intercepted, not a verdict of its own: the
// verdicts say what a build must do, and for a forged head that is what
// it is for a forged certificate — do not trust what comes over this path
// — while the reason names which protection caught it.

// sumdbFindings judges what a checksum database check saw.
func sumdbFindings(obs Observation, exp Expectation, now time.Time) []Finding {
	st := obs.SumDB
	if st == nil {
		st = &SumDBState{Name: obs.Host}
	}
	switch st.Signature {
	case SignatureUnknownKey, SignatureInvalid, SignatureMalformed:
		return []Finding{signatureFinding(st)}
	}
	if obs.Failure != FailureNone || st.Tree == nil {
		return sumdbFailure(obs, st)
	}
	var fs []Finding
	switch st.Consistency {
	case ConsistencyFirst:
		kept := "was kept in " + st.StatePath + ": each later check proves the tree it is served extends it"
		if st.StatePath == "" {
			kept = "but nothing keeps it (no state directory): no later check can prove the log only grew"
		}
		fs = append(fs, Finding{ReasonSumDBFirstTree, Info, fmt.Sprintf(
			"the first tree head of %s seen from this machine (%s) verified, and %s", st.Name, st.Tree, kept)})
	case ConsistencyForked, ConsistencySmaller:
		fs = append(fs, Finding{ReasonSumDBForked, Critical, fmt.Sprintf(
			"the tree head %s serves (%s) is not an extension of the %s verified at %s (%s): two heads signed with the database's key that disagree are the proof that this machine is shown another history than the rest of the world, the attack the checksum database exists to expose",
			st.URL, st.Tree, keptText(st), st.KeptAt.UTC().Format(time.RFC3339), st.ConsistencyDetail)})
	case ConsistencyUnverified:
		fs = append(fs, Finding{ReasonUnreachable, Info, fmt.Sprintf(
			"the tree head of %s (%s) verified, but the tiles that prove it extends the %s could not be read: %s",
			st.Name, st.Tree, keptText(st), st.ConsistencyDetail)})
	case ConsistencySame:
		if age := now.Sub(st.GrownAt); exp.SumDBMaxAge > 0 && !st.GrownAt.IsZero() && age > exp.SumDBMaxAge {
			fs = append(fs, Finding{ReasonSumDBStale, Warning, fmt.Sprintf(
				"the tree of %s has stayed at size %d since %s (%s, longer than %s): a stale cache on the way, or an old head replayed; the go command would not see modules added since",
				st.Name, st.Tree.Size, st.GrownAt.UTC().Format(time.RFC3339), age.Round(time.Minute), exp.SumDBMaxAge)})
		}
	}
	return fs
}

// signatureFinding reports a tree head the database's key does not vouch
// for, with the tree it claims as evidence.
func signatureFinding(st *SumDBState) Finding {
	claim := "a head that is no tree"
	if st.Tree != nil {
		claim = "a head claiming a " + st.Tree.String()
	}
	detail := fmt.Sprintf("%s serves %s, and its signature does not verify with the key of %s (%s: %s)",
		st.URL, claim, st.Name, st.Signature, st.SignatureDetail)
	if len(st.Signers) > 0 {
		detail += fmt.Sprintf("; it is signed by %v", st.Signers)
	}
	return Finding{ReasonSumDBSignature, Critical, detail + ": whoever answers for the database cannot sign for it"}
}

// sumdbFailure judges a check that read no tree head: blocked when the
// module proxy answered (the control), else unreachable.
func sumdbFailure(obs Observation, st *SumDBState) []Finding {
	detail := string(obs.Failure)
	if obs.FailureDetail != "" {
		detail += ": " + obs.FailureDetail
	}
	if p := obs.Plain; p != nil && p.Status != 0 {
		detail += fmt.Sprintf(" (HTTP %d %q)", p.Status, firstNonEmpty(p.Title, p.BodySnippet))
	}
	if st.ProxyAnswered {
		return []Finding{{ReasonSumDBBlocked, Critical, fmt.Sprintf(
			"the checksum database %s could not be read at %s (%s), while the module proxy answered: the path lets modules through and stops their verification",
			st.Name, st.URL, detail)}}
	}
	return []Finding{{ReasonUnreachable, Info, fmt.Sprintf("the checksum database %s could not be read at %s: %s", st.Name, st.URL, detail)}}
}

func keptText(st *SumDBState) string {
	if st.Kept == nil {
		return "tree kept from before"
	}
	return "kept " + st.Kept.String()
}

// sumdbRemediation is the next step for a checksum database's verdict.
func sumdbRemediation(v Verdict, obs Observation, findings []Finding) string {
	st := obs.SumDB
	if st == nil {
		return ""
	}
	switch v {
	case Intercepted:
		return fmt.Sprintf("Do not turn the checksum database off (GOSUMDB=off, GONOSUMDB, GOPRIVATE for public modules, GOFLAGS=-insecure): it is what caught this. Read %s/latest from a network you trust and compare; if the module proxy serves the database, tell whoever runs it. Until it is explained, do not add or upgrade modules on this network. Once it is, remove %s to start from the next tree.", st.URL, st.StatePath)
	case Blocked:
		return fmt.Sprintf("The go command cannot verify modules against %s on this network while the module proxy answers: builds fail with checksum errors. Ask the network team to allow %s, or use a module proxy that serves /sumdb/%s/ (GOPROXY), rather than the fix people copy (GOSUMDB=off or GONOSUMDB), which turns the protection off.", st.Name, st.URL, st.Name)
	case Unreachable:
		return fmt.Sprintf("The checksum database %s could not be read or its tree not proved (see the findings): check connectivity, HTTPS_PROXY and GOPROXY. This is not evidence of interception.", st.Name)
	case OK:
		if slices.ContainsFunc(findings, func(f Finding) bool { return f.Reason == ReasonSumDBStale }) {
			return fmt.Sprintf("Read %s/latest from another network: a larger tree there means something on this path serves an old head (a proxy's stale cache, or a replay), and builds here do not see modules added since.", st.URL)
		}
	}
	return ""
}
