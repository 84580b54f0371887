package sumdb

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReached(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state", ReachedFile)
	r := &Reached{Path: path}
	if got := r.Load(); len(got) != 0 {
		t.Fatalf("no file: %v", got)
	}
	a := Reach{Addr: netip.MustParseAddr("192.0.2.7")}
	b := Reach{Addr: netip.MustParseAddr("2001:db8::7"), ByGo: true}
	if err := r.Save(map[string]Reach{"sum.example:443": a, "proxy.example:443": b}); err != nil {
		t.Fatal(err)
	}
	want := map[string]Reach{"sum.example:443": a, "proxy.example:443": b}
	if got := (&Reached{Path: path}).Load(); !maps.Equal(got, want) {
		t.Fatalf("Load = %v, want %v", got, want)
	}

	// Nothing changed: nothing written.
	before, _ := os.Stat(path)
	old := before.ModTime().Add(-time.Hour)
	os.Chtimes(path, old, old)
	r = &Reached{Path: path}
	r.Load()
	if err := r.Save(map[string]Reach{"sum.example:443": a}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !after.ModTime().Equal(old) {
		t.Error("an unchanged file was written")
	}

	// A Reach that says nothing forgets the host; the others stay.
	if err := r.Save(map[string]Reach{"sum.example:443": {}}); err != nil {
		t.Fatal(err)
	}
	if got := (&Reached{Path: path}).Load(); !maps.Equal(got, map[string]Reach{"proxy.example:443": b}) {
		t.Errorf("after forgetting: %v", got)
	}

	// Too many hosts: only this check's are kept.
	many := map[string]Reach{}
	for i := range maxReachedHosts {
		many[fmt.Sprintf("h%d.example:443", i)] = a
	}
	if err := r.Save(many); err != nil {
		t.Fatal(err)
	}
	if err := r.Save(map[string]Reach{"last.example:443": b}); err != nil {
		t.Fatal(err)
	}
	if got := (&Reached{Path: path}).Load(); !maps.Equal(got, map[string]Reach{"last.example:443": b}) {
		t.Errorf("past the bound: %d hosts", len(got))
	}

	// Another Reached on the file (a daemon's runner before a reload)
	// saved since this one loaded: its hosts stay.
	r1, r2 := &Reached{Path: path}, &Reached{Path: path}
	r1.Load()
	if err := r2.Save(map[string]Reach{"other.example:443": a}); err != nil {
		t.Fatal(err)
	}
	if err := r1.Save(map[string]Reach{"mine.example:443": b}); err != nil {
		t.Fatal(err)
	}
	if got := (&Reached{Path: path}).Load(); got["other.example:443"] != a || got["mine.example:443"] != b {
		t.Errorf("after two savers: %v", got)
	}

	// Go's dialer with no first address to open early is still kept: the
	// next dial asks Go's resolver straight away.
	goOnly := Reach{ByGo: true}
	if err := r.Save(map[string]Reach{"go.example:443": goOnly}); err != nil {
		t.Fatal(err)
	}
	if got := (&Reached{Path: path}).Load(); got["go.example:443"] != goOnly {
		t.Errorf("Go's dialer without an address: %v", got)
	}

	var none *Reached
	if none.Load() != nil || none.Save(want) != nil {
		t.Error("a nil Reached keeps something")
	}
}

// A file that cannot be read as this one is nothing: what it holds is only
// a guess the resolution must confirm.
func TestReachedIgnoresOtherFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, body := range []string{
		"",
		"{",
		`{"version": 2, "hosts": {"a.example:443": {"addr": "192.0.2.1", "by": "system"}}}`,
		`{"version": 1, "hosts": {"a.example:443": {"addr": "not an address", "by": "system"}}}`,
		`{"version": 1, "hosts": {"a.example:443": {"addr": "192.0.2.1", "by": "someone"}}}`,
		`{"version": 1, "hosts": {"a.example:443": "192.0.2.1"}}`,
		`[]`,
	} {
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := (&Reached{Path: path}).Load(); len(got) != 0 {
			t.Errorf("%q: %v", body, got)
		}
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxReachedSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := (&Reached{Path: big}).Load(); len(got) != 0 {
		t.Errorf("a file past the size bound: %v", got)
	}
}
