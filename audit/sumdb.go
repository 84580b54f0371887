package audit

import (
	"fmt"
	"slices"

	"github.com/mitmwatch/mitmwatch/detector"
)

// sumdbSettings are the Go settings that take modules out of the checksum
// database's protection, for some modules or for all.
var sumdbSettings = []string{"GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOINSECURE"}

// WithSumDB adds what the check of the checksum database found on this
// machine's path to the fix of each setting that keeps modules from it: the
// result is the reason to turn it back on (or, blocked, the thing to fix
// instead).
func (r *Report) WithSumDB(res detector.Result) {
	st := res.Obs.SumDB
	if st == nil {
		return
	}
	var why string
	switch res.Verdict {
	case detector.OK:
		tree := ""
		if st.Tree != nil {
			tree = fmt.Sprintf(" (%s", st.Tree)
			if st.ViaProxy {
				tree += ", through the module proxy"
			}
			tree += ")"
		}
		why = fmt.Sprintf("This machine reaches the checksum database %s and verified its tree%s: nothing on the path stops the go command from checking modules, so turning it back on costs nothing.", st.Name, tree)
	case detector.Blocked:
		why = fmt.Sprintf("The checksum database %s is blocked on this machine's path (see its target in the report): get it allowed, or use a module proxy that serves it, rather than leaving the check off.", st.Name)
	case detector.Intercepted:
		why = fmt.Sprintf("On this machine's path the checksum database %s is served a tree it did not sign or that contradicts the one seen before (see its target): what the check exists to catch, and the reason to keep it on.", st.Name)
	default:
		why = fmt.Sprintf("The check of the checksum database %s from here was %s (see its target): run it again where the database answers before deciding.", st.Name, res.Verdict)
	}
	for i, f := range r.Findings {
		if f.Tool == "go" && slices.Contains(sumdbSettings, f.Setting) {
			r.Findings[i].Fix += " " + why
		}
	}
}
