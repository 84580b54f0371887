package passive

import "github.com/mitmwatch/mitmwatch/detector"

// judged is a capture judged the way mitmwatch's commands judge one.
type judged struct {
	Capture
	Judged  []detector.Result // Judged[i] judges Groups[i]
	Results []detector.Result // one per host, port and path
}

func judge(a *Analysis, pol detector.Policy) judged {
	c := a.Capture()
	j := detector.Judge(c.Cases(), pol, c.At)
	return judged{Capture: c, Judged: j, Results: detector.PerHost(j)}
}
