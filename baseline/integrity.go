package baseline

import (
	"slices"

	"github.com/mitmwatch/mitmwatch/detector"
)

// learnIntegrity learns what a target that does not speak TLS showed. ok
// says the result is such a target; learn that an entry was made. An SSH
// target is learned by its host key when it looked clean; a checksum
// database is not learned here: the check itself keeps its tree, in the
// state directory.
func learnIntegrity(r detector.Result) (e Entry, learn, ok bool) {
	switch r.Obs.Protocol {
	case detector.ProtocolSSH:
		st := r.Obs.SSH
		if st == nil || st.HostKey == nil || r.Verdict != detector.OK {
			return Entry{}, false, true
		}
		return Entry{SSHHostKeys: []detector.SSHFingerprint{st.HostKey.SHA256}}, true, true
	case detector.ProtocolSumDB:
		return Entry{}, false, true
	}
	return Entry{}, false, false
}

// applySSH makes an SSH target's learned host keys its Learned
// expectation: without pins, a key that matches none is an interception.
func applySSH(exp detector.Expectation, e Entry) detector.Expectation {
	if len(e.SSHHostKeys) == 0 {
		return exp
	}
	l := &detector.Learned{}
	if exp.Learned != nil {
		c := *exp.Learned
		l = &c
	}
	l.SSHHostKeys = slices.Clone(e.SSHHostKeys)
	exp.Learned = l
	return exp
}
