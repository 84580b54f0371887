package config

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch"
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

// TestDefaultSSHPinsArePublishedKeys keeps the fingerprints in rules.yaml
// honest: each is the SHA-256 of a host key GitHub publishes in
// known_hosts form on the same documentation page
// (https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints).
func TestDefaultSSHPinsArePublishedKeys(t *testing.T) {
	t.Parallel()
	published := []string{
		"AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
		"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
		"AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
	}
	var want []detector.SSHFingerprint
	for _, k := range published {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, sha256.Sum256(raw))
	}
	cfg, err := Parse(EmbeddedName, mitmwatch.DefaultRules, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tg := range cfg.Targets {
		if tg.Protocol != detector.ProtocolSSH {
			continue
		}
		n++
		for _, pin := range tg.Expect.SSHHostKeys {
			if !slices.Contains(want, pin) {
				t.Errorf("%s: pin %s is no published key's", tg.Key(), pin)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d SSH targets in the default rules, want 2", n)
	}
}
