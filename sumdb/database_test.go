package sumdb_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
)

func TestParseGOSUMDB(t *testing.T) {
	t.Parallel()
	log, err := sumdbtest.NewLog("sum.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	key := log.VerifierKey()
	if db, _, err := sumdb.ParseGOSUMDB(key + " https://mirror.lab.example/"); err != nil || db.Name != "sum.lab.example" || db.URL != "https://mirror.lab.example" {
		t.Errorf("name+key url: %+v %v", db, err)
	}
	db, off, err := sumdb.ParseGOSUMDB(sumdb.DefaultName())
	if err != nil || off || db.Name != sumdb.DefaultName() || db.Key != sumdb.DefaultGOSUMDB() || db.URL != "" {
		t.Errorf("the default name: %+v %v %v", db, off, err)
	}
	if _, off, err := sumdb.ParseGOSUMDB("off"); !off || err != nil {
		t.Errorf("off: %v %v", off, err)
	}
	for _, bad := range []string{"", "sum.lab.example", key + " https://a https://b", key + " ftp://mirror", "not a key+x+y"} {
		if _, _, err := sumdb.ParseGOSUMDB(bad); err == nil {
			t.Errorf("ParseGOSUMDB(%q) accepted", bad)
		}
	}
	if _, _, err := sumdb.ParseGOSUMDB("sum.lab.example"); err == nil || !strings.Contains(err.Error(), "needs its key") {
		t.Errorf("a name other than the default without a key: %v", err)
	}
}

func TestParseGOPROXY(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []sumdb.Proxy
	}{
		{"https://proxy.lab.example,direct", []sumdb.Proxy{{URL: "https://proxy.lab.example"}, {URL: "direct"}}},
		{"proxy.lab.example/go/|https://b.lab.example,off,https://never", []sumdb.Proxy{
			{URL: "https://proxy.lab.example/go", FallBackOnError: true}, {URL: "https://b.lab.example"}, {URL: "off"}}},
		{"file:///srv/goproxy,direct", []sumdb.Proxy{{URL: "direct"}}},
		{" , direct", []sumdb.Proxy{{URL: "direct"}}},
	} {
		got, err := sumdb.ParseGOPROXY(c.in)
		if err != nil {
			t.Errorf("ParseGOPROXY(%q): %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseGOPROXY(%q) (-want +got):\n%s", c.in, diff)
		}
	}
	for _, bad := range []string{"", ",", "ftp://x.lab.example"} {
		if _, err := sumdb.ParseGOPROXY(bad); err == nil {
			t.Errorf("ParseGOPROXY(%q) accepted", bad)
		}
	}
}
