//go:build linux

package main

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

func TestSpread(t *testing.T) {
	in := []float64{9, 1, 4, 7, 2}
	if got, want := spreadOf(in), (spread{4, 1, 9}); got != want {
		t.Errorf("spreadOf(%v) = %v, want %v", in, got, want)
	}
	if !slices.Equal(in, []float64{9, 1, 4, 7, 2}) {
		t.Errorf("spreadOf reordered its input: %v", in)
	}
}

// TestRulesAreDefault: the benchmark measures the default configuration;
// its rules.yaml may only name the targets, the public roots and the lab's
// reference resolvers, and must be valid.
func TestRulesAreDefault(t *testing.T) {
	y := rulesYAML("/lab/public.pem")
	for _, off := range []string{"probe", "path", "samples", "canary", "toolchain", "timeout"} {
		if strings.Contains(y, off) {
			t.Errorf("rules.yaml sets %q:\n%s", off, y)
		}
	}
	cfg, err := config.Parse("rules.yaml", []byte(strings.Replace(y, "/lab/public.pem", "mozilla", 1)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Toolchain || !cfg.DNS.Canary || cfg.Path.Samples == 0 || len(cfg.DNS.Reference) != 3 || len(cfg.Targets) != len(hosts) {
		t.Errorf("not the default configuration: toolchain %v, canary %v, path %+v, %d references, %d targets",
			cfg.Toolchain, cfg.DNS.Canary, cfg.Path, len(cfg.DNS.Reference), len(cfg.Targets))
	}
	var keys, want []string
	for _, tg := range cfg.Targets {
		keys = append(keys, tg.Key())
	}
	for _, h := range hosts {
		want = append(want, endpoint(h))
	}
	if !slices.Equal(keys, want) {
		t.Errorf("targets %v, want %v", keys, want)
	}
	// Every default bogon but the benchmarking range the lab lives in.
	if len(cfg.Policy.Bogons) != len(detector.DefaultBogons)-1 || slices.Contains(cfg.Policy.Bogons, netip.MustParsePrefix("198.18.0.0/15")) {
		t.Errorf("bogons %v, want the defaults less 198.18.0.0/15", cfg.Policy.Bogons)
	}
}

// TestRulesNameTheSumDB: the rules of the runs without discovery name
// the database and proxy the go settings name, and nothing else changes.
func TestRulesNameTheSumDB(t *testing.T) {
	dbLog, err := sumdbtest.NewLog(sumdbHost)
	if err != nil {
		t.Fatal(err)
	}
	key := dbLog.VerifierKey()
	y := rulesNamingSumDB("/lab/public.pem", key)
	if !strings.HasPrefix(y, rulesYAML("/lab/public.pem")) {
		t.Errorf("the rules differ from the default run's beyond the database:\n%s", y)
	}
	cfg, err := config.Parse("rules.yaml", []byte(strings.Replace(y, "/lab/public.pem", "mozilla", 1)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := homeFiles(gosumdb(key))[".config/go/env"]
	if cfg.SumDB.GOSUMDB != gosumdb(key) || cfg.SumDB.GOPROXY != goproxy ||
		!strings.Contains(env, "GOSUMDB="+cfg.SumDB.GOSUMDB+"\n") || !strings.Contains(env, "GOPROXY="+cfg.SumDB.GOPROXY+"\n") {
		t.Errorf("rules name GOSUMDB %q and GOPROXY %q; the go settings are:\n%s", cfg.SumDB.GOSUMDB, cfg.SumDB.GOPROXY, env)
	}
}

// TestChildEnv: the children see the benchmark's home and trust store,
// and nothing of this shell's proxies or tool settings.
func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "HOME=/root", "https_proxy=http://p.example:3128", "GOPROXY=off",
		"npm_config_registry=https://r.example/", "PIP_INDEX_URL=https://i.example/", "SSL_CERT_DIR=/x", "LANG=C"}, "/b/home", "/b/system.pem")
	want := []string{"PATH=/bin", "LANG=C", "HOME=/b/home", "SSL_CERT_FILE=/b/system.pem"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %v, want %v", got, want)
	}
}

// tlsTargets is the report's JSON for the benchmark hosts as TLS targets,
// with the verdicts given, in order, each carrying dns-unverified.
func tlsTargets(verdicts ...string) []string {
	var out []string
	for i, v := range verdicts {
		host, port, _ := strings.Cut(endpoint(hosts[i%len(hosts)]), ":")
		out = append(out, fmt.Sprintf(`{"host":%q,"port":%s,"verdict":%q,"findings":[{"reason":"dns-unverified"}]}`, host, port, v))
	}
	return out
}

// sumdbTarget is the report's JSON for a checksum database result.
func sumdbTarget(name, verdict, signature, consistency string) string {
	return fmt.Sprintf(`{"host":%q,"port":%d,"protocol":"gosumdb","verdict":%q,"findings":[],`+
		`"sumdb":{"name":%q,"url":"https://%s","signature":%q,"tree":{"size":10100,"hash":"AA=="},"consistency":%q}}`,
		name, sumdbPort, verdict, name, endpoint(name), signature, consistency)
}

func roundOf(t *testing.T, targets ...string) roundDoc {
	t.Helper()
	d, err := parseRound([]byte(`{"schema_version":1,"targets":[` + strings.Join(targets, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestClean: figures of a round that was not clean, or lacks or adds
// targets, are refused. The checksum database's result is no host.
func TestClean(t *testing.T) {
	doc := func(verdicts ...string) roundDoc { return roundOf(t, tlsTargets(verdicts...)...) }
	clean := slices.Repeat([]string{"ok"}, len(hosts))
	if err := doc(clean...).clean(0); err != nil {
		t.Errorf("clean round refused: %v", err)
	}
	withDB := roundOf(t, append(tlsTargets(clean...), sumdbTarget(sumdbHost, "ok", "verified", "extends"))...)
	if err := withDB.clean(0); err != nil {
		t.Errorf("clean round with the checksum database refused: %v", err)
	}
	if n := withDB.withReason("dns-unverified"); n != len(hosts) {
		t.Errorf("withReason counted %d, want %d", n, len(hosts))
	}
	dirty := slices.Clone(clean)
	dirty[3] = "intercepted"
	i := slices.Index(hosts, sumdbHost)
	sumdbOn443 := slices.Clone(tlsTargets(clean...))
	sumdbOn443[i] = strings.Replace(sumdbOn443[i], fmt.Sprint(sumdbPort), "443", 1)
	// Five results, as many as hosts, but one is the database's.
	dbForHost := append(slices.Delete(tlsTargets(clean...), i, i+1), sumdbTarget(sumdbHost, "ok", "verified", "first"))
	for name, err := range map[string]error{
		"intercepted":        doc(dirty...).clean(1),
		"one target":         doc("ok").clean(0),
		"a target added":     doc(append(clean, "ok")...).clean(0),
		"exit 3":             doc(clean...).clean(3),
		"database not ok":    roundOf(t, append(tlsTargets(clean...), sumdbTarget(sumdbHost, "blocked", "", ""))...).clean(0),
		"database on 443":    roundOf(t, sumdbOn443...).clean(0),
		"database as a host": roundOf(t, dbForHost...).clean(0),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := parseRound([]byte("not json")); err == nil {
		t.Error("garbage accepted")
	}
}

// TestSumDBVerified: a run must show the benchmark's checksum database
// read, verified and, once a tree was kept, proved to extend it.
func TestSumDBVerified(t *testing.T) {
	hostsOK := tlsTargets(slices.Repeat([]string{"ok"}, len(hosts))...)
	with := func(db ...string) roundDoc { return roundOf(t, append(slices.Clone(hostsOK), db...)...) }
	for _, c := range []struct {
		name, want string
		doc        roundDoc
		ok         bool
	}{
		{"first", "first", with(sumdbTarget(sumdbHost, "ok", "verified", "first")), true},
		{"extends", "extends", with(sumdbTarget(sumdbHost, "ok", "verified", "extends")), true},
		{"no result (GOSUMDB unreadable)", "first", with(), false},
		{"first again: the tree was not kept", "extends", with(sumdbTarget(sumdbHost, "ok", "verified", "first")), false},
		{"same: the log did not grow", "extends", with(sumdbTarget(sumdbHost, "ok", "verified", "same")), false},
		{"unverified proof", "extends", with(sumdbTarget(sumdbHost, "ok", "verified", "unverified")), false},
		{"unknown key", "first", with(sumdbTarget(sumdbHost, "intercepted", "unknown-key", "")), false},
		{"another database", "first", with(sumdbTarget("other.bench.example", "ok", "verified", "first")), false},
		{"two results", "first", with(sumdbTarget(sumdbHost, "ok", "verified", "first"), sumdbTarget(sumdbHost, "ok", "verified", "first")), false},
		{"failure", "first", with(strings.Replace(sumdbTarget(sumdbHost, "unreachable", "", ""), `"findings"`, `"failure":"timeout","failure_detail":"GET https://x/latest: timeout","findings"`, 1)), false},
		{"no state", "first", with(fmt.Sprintf(`{"host":%q,"port":%d,"protocol":"gosumdb","verdict":"ok","findings":[]}`, sumdbHost, sumdbPort)), false},
	} {
		err := c.doc.sumdbVerified(c.want)
		if (err == nil) != c.ok {
			t.Errorf("%s: sumdbVerified(%q) = %v, want ok %v", c.name, c.want, err, c.ok)
		}
	}
}

// TestGOSUMDB: the go env file names the benchmark's checksum database as
// the go command and mitmwatch read it, key and address, under .example;
// the address is a listed target, so discovery adds none.
func TestGOSUMDB(t *testing.T) {
	dbLog, err := sumdbtest.NewLog(sumdbHost)
	if err != nil {
		t.Fatal(err)
	}
	env := homeFiles(gosumdb(dbLog.VerifierKey()))[".config/go/env"]
	var value string
	for line := range strings.Lines(env) {
		// As the go command reads its env file: KEY=VALUE, nothing quoted.
		if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "GOSUMDB="); ok {
			value = v
		}
	}
	if value != gosumdb(dbLog.VerifierKey()) {
		t.Fatalf("go env file %q: GOSUMDB=%q, want %q", env, value, gosumdb(dbLog.VerifierKey()))
	}
	db, off, err := sumdb.ParseGOSUMDB(value)
	if err != nil || off {
		t.Fatalf("ParseGOSUMDB(%q) = off %v, %v", value, off, err)
	}
	if db.Name != sumdbHost || db.Key != dbLog.VerifierKey() || db.URL != "https://"+endpoint(sumdbHost) {
		t.Errorf("ParseGOSUMDB(%q) = %+v, want %s with its key at https://%s", value, db, sumdbHost, endpoint(sumdbHost))
	}
	if !strings.HasSuffix(db.Name, ".bench.example") {
		t.Errorf("database name %q is not under .bench.example", db.Name)
	}
	tg, ok, err := config.SumDBTarget(config.SumDB{}, value, "https://modules.bench.example,direct", "go env GOSUMDB")
	if err != nil || !ok || tg.Host != sumdbHost || tg.SumDB.URL != db.URL {
		t.Errorf("SumDBTarget = %+v, %v, %v", tg, ok, err)
	}
	found := toolchain.ParseGOSUMDB(value)
	if len(found) != 1 || net.JoinHostPort(found[0].Host, fmt.Sprint(found[0].Port)) != endpoint(sumdbHost) {
		t.Fatalf("discovery reads GOSUMDB %q as %+v, want %s", value, found, endpoint(sumdbHost))
	}
	cfg, err := config.Parse("rules.yaml", []byte(rulesYAML("mozilla")), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if more, errs := config.WithToolchain(cfg.Targets, found); len(more) != len(cfg.Targets) || len(errs) > 0 {
		t.Errorf("discovery adds %v (%v) to the listed targets", more[len(cfg.Targets):], errs)
	}
}

// TestRatio: ratios are taken within each round, then the median.
func TestRatio(t *testing.T) {
	ms := func(xs ...float64) []sample {
		var out []sample
		for _, x := range xs {
			out = append(out, sample{wall: time.Duration(x * float64(time.Millisecond))})
		}
		return out
	}
	// The second round disturbed a alone: the ratio of the medians
	// (330/250) would show it, the median of the rounds' ratios does not.
	if got := ratio(ms(110, 500, 330), ms(100, 250, 300), wallMS); got != 1.1 {
		t.Errorf("ratio = %v, want 1.1", got)
	}
}
