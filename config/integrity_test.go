package config

import (
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

func TestSumDBTarget(t *testing.T) {
	t.Parallel()
	const key = "sum.lab.example+59b4b0e4+AcIyK7D4LL3YP6GpVC64PyYRYlRsyAAk4lIBxt3mw7kS"
	cfg := SumDB{MaxAge: time.Hour}
	tg, ok, err := SumDBTarget(cfg, key, "https://proxy.lab.example,direct", "go env GOSUMDB")
	if err != nil || !ok {
		t.Fatalf("SumDBTarget: %v %v", ok, err)
	}
	if tg.Key() != "gosumdb://sum.lab.example" || tg.Protocol != detector.ProtocolSumDB || tg.SumDB.Key != key ||
		len(tg.SumDB.Proxies) != 2 || tg.Expect.SumDBMaxAge != time.Hour || tg.Source != "go env GOSUMDB" {
		t.Errorf("target %+v, database %+v", tg, tg.SumDB)
	}
	// GOSUMDB=off: the default database, so the audit can say what
	// turning it back on gives.
	tg, ok, err = SumDBTarget(cfg, "off", "", "go env GOSUMDB")
	if err != nil || !ok || tg.Host != sumdb.DefaultName() || !strings.Contains(tg.Source, "off") || tg.SumDB.Proxies[0].URL != "direct" {
		t.Errorf("off: %+v %v %v", tg, ok, err)
	}
	if _, _, err := SumDBTarget(cfg, "sum.lab.example", "direct", "go env GOSUMDB"); err == nil || !strings.HasPrefix(err.Error(), "go env GOSUMDB: ") {
		t.Errorf("a name without its key: %v", err)
	}
}

func TestWithSSH(t *testing.T) {
	t.Parallel()
	written := []Target{{Host: "git.lab.example", Port: 22, Protocol: detector.ProtocolSSH, Source: "rules.yaml:3"}}
	got, errs := WithSSH(written, []toolchain.Host{
		{Host: "git.lab.example", Port: 22, Source: "remote.origin.url"},
		{Host: "GIT2.lab.example", Port: 2222, Source: "remote.other.url"},
		{Host: "bad host", Port: 22, Source: "remote.bad.url"},
	})
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "remote.bad.url: ") {
		t.Errorf("errors %v", errs)
	}
	var keys []string
	for _, tg := range got {
		keys = append(keys, tg.Key()+" "+tg.Source)
	}
	if want := "ssh://git.lab.example:22 rules.yaml:3,ssh://git2.lab.example:2222 remote.other.url"; strings.Join(keys, ",") != want {
		t.Errorf("targets %q, want %q", keys, want)
	}
}
