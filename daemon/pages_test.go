package daemon

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
)

func TestSortForPage(t *testing.T) {
	t.Parallel()
	ts := []exporter.Target{
		{Key: "a:443", Host: "a", Port: 443, Verdict: detector.OK},
		{Key: "b:443", Host: "b", Port: 443, Verdict: detector.Unreachable},
		{Key: "c:443", Host: "c", Port: 443, Verdict: detector.Intercepted},
		{Key: "d:443", Host: "d", Port: 443, Verdict: detector.DNSTampered},
		{Key: "e:443", Host: "e", Port: 443, Verdict: detector.Inspected,
			Findings: []detector.Finding{{Reason: detector.ReasonInterceptorAcceptsInvalidUpstream, Severity: detector.Critical}}},
		{Key: "f:443", Host: "f", Port: 443},
		{Key: "a:8443", Host: "a", Port: 8443, Verdict: detector.Intercepted},
	}
	sortForPage(ts)
	var got []string
	for _, x := range ts {
		got = append(got, x.Key)
	}
	want := []string{"d:443", "a:8443", "c:443", "e:443", "b:443", "f:443", "a:443"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if got := tally(ts); len(got) != 6 || got[0].Verdict != "dns-tampered" || got[1].N != 2 || got[5].Verdict != "pending" {
		t.Errorf("tally %+v", got)
	}
	if !lastRound(ts).IsZero() {
		t.Error("a last complete round while a target was never probed")
	}
}

func TestHistoryBoundedAndRestored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := newLab(t)
	d, _ := l.daemon(t, &loader{cfg: l.config(time.Hour, time.Second)}, dir)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	vs := []detector.Verdict{detector.OK, detector.Intercepted}
	d.mu.Lock()
	d.noteChange("x:443", "", detector.OK, at)
	d.noteChange("x:443", detector.OK, detector.OK, at) // no change
	for i := range historyLimit + 10 {
		d.noteChange("x:443", vs[i%2], vs[(i+1)%2], at.Add(time.Duration(i+1)*time.Minute))
	}
	d.mu.Unlock()
	cs := d.changesOf("x:443")
	if len(cs) != historyLimit || !cs[len(cs)-1].At.Equal(at.Add(time.Duration(historyLimit+10)*time.Minute)) {
		t.Fatalf("%d changes kept, last %v", len(cs), cs[len(cs)-1])
	}
	d.saveHistory()

	again, _ := l.daemon(t, &loader{cfg: l.config(time.Hour, time.Second)}, dir)
	if diff := cmp.Diff(cs, again.changesOf("x:443")); diff != "" {
		t.Errorf("history after a restart (-saved +restored):\n%s", diff)
	}
}

// A history file that cannot be read does not stop the daemon: it is set
// aside and history starts empty; the state file beside it is untouched.
func TestHistoryUnusable(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"{not json", `{"version": 7, "targets": {}}`} {
		dir := t.TempDir()
		writeString(body)(dir + "/" + historyFile)
		l := newLab(t)
		d, logs := l.daemon(t, &loader{cfg: l.config(time.Hour, time.Second)}, dir)
		if len(d.allChanges()) != 0 || len(logs.find("history file unusable, set aside; starting without history", nil)) != 1 {
			t.Errorf("%q: history %v", body, d.allChanges())
		}
	}
	if cs, err := decodeHistory([]byte(`{"version": 1, "targets": {"a:1": [{"at": "2026-01-01T00:00:00Z", "to": "no-such-verdict"}, {"at": "2026-01-01T00:00:00Z", "to": "ok"}]}}`)); err != nil || len(cs["a:1"]) != 1 {
		t.Errorf("decode: %v, %v", cs, err)
	}
}

func TestStrip(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cs := []verdictChange{
		{At: from.Add(time.Hour), To: detector.OK},
		{At: from.Add(3 * time.Hour), From: detector.OK, To: detector.Intercepted},
		{At: from.Add(3*time.Hour + time.Second), From: detector.Intercepted, To: detector.OK},
	}
	s := stripOf(cs, from, from.Add(4*time.Hour))
	want := []segment{
		{X: 60, W: 120, Fill: fills["ok"]},
		{X: 180, W: 1, Fill: fills["detected"]},
		{X: 180, W: 60, Fill: fills["ok"]},
	}
	for i := range s.Segments {
		s.Segments[i].Title = ""
	}
	if diff := cmp.Diff(want, s.Segments); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}
}

// An IPv6 target's page is at /target/[addr]:port, as the status page
// links it.
func TestTargetPageIPv6(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	d, _ := l.daemon(t, &loader{cfg: l.config(time.Hour, time.Second)}, "")
	key := "[2001:db8::1]:443"
	d.mu.Lock()
	d.cfg = l.config(time.Hour, time.Second)
	d.targets[key] = &target{rec: exporter.Target{Key: key, Host: "2001:db8::1", Port: 443, Verdict: detector.Unreachable, LastProbe: time.Now(),
		Findings: []detector.Finding{{Reason: detector.ReasonUnreachable, Detail: "connection_refused"}}, Probes: 1}}
	d.keys = append(d.keys, key)
	d.noteChange(key, "", detector.Unreachable, time.Now())
	d.mu.Unlock()
	h := d.Handler(nil)
	_, page, _ := get(t, h, "GET", "/")
	href := fmt.Sprintf(`href="/target/%s"`, strings.NewReplacer("[", "%5b", "]", "%5d").Replace(key))
	if !strings.Contains(page, href) && !strings.Contains(page, `href="/target/`+key+`"`) {
		t.Fatalf("status page does not link %s:\n%s", key, page)
	}
	for _, path := range []string{"/target/" + key, "/target/%5B2001:db8::1%5D:443"} {
		code, body, _ := get(t, h, "GET", path)
		if code != http.StatusOK || !strings.Contains(body, key) || !slices.ContainsFunc(strings.Split(body, "\n"), func(s string) bool { return strings.Contains(s, "first verdict") }) {
			t.Errorf("GET %s: %d", path, code)
		}
	}
}
