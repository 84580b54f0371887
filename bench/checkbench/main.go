//go:build linux

// Command checkbench measures `mitmwatch check` in its default
// configuration — path probes, reference resolvers, the canary, the audit
// and toolchain discovery all on — against hosts behind real network
// latency, and sets it beside a bare Go program that makes the same
// verified handshakes concurrently (bench/barehandshakes: the standard
// library alone, so that its start-up is a small Go program's).
//
// As root it builds netlab's namespaces (client, router, a wan relay that
// delays every frame, internet) and adds its own resolvers in the internet
// namespace: the client's system resolver and three references (UDP, DNS
// over TLS, DNS over HTTPS). Every packet between the client and an origin
// or a resolver crosses the delay, so the kernel's TCP handshake takes the
// round trip as it does on a real network. Both programs run as child
// processes in the client namespace, started from a thread that entered
// it (see launcher), with a home directory of their own whose go, npm, pip
// and git settings name the benchmark's hosts: discovery and the audit do
// their real work and add no target.
//
// The checksum database the go settings name (GOSUMDB, with its key and
// its address) is real too: a signed log served over TLS in the internet
// namespace, behind the same delay, growing before every check that reads
// it. Each such check reads its signed tree head, verifies the signature
// and proves with the log's tiles that the tree extends the one the last
// check kept, as on a build machine; a run that did not is refused.
//
// Each round runs, in an order that rotates: the bare program, check,
// check with every reference resolver blackholed at the router, and check
// with toolchain discovery and the audit off, twice: with the rules naming
// the checksum database the go settings name (the same checks, so the
// difference is discovery's and the audit's own cost) and without it (the
// database discovery adds left out). The first round warms caches and is
// dropped. It prints medians with their spread.
//
// Run it through bench/check.sh, which builds the binary first.
package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/netlab"
)

// hosts are the targets: five names under .example, each played by one of
// netlab's origins but the checksum database, which the benchmark serves
// itself (on sumdbPort: see endpoint). The home directory's toolchain
// settings name them too.
var hosts = []string{
	"git.bench.example", "modules.bench.example", sumdbHost,
	"npm.bench.example", "index.bench.example",
}

// sumdbHost is the checksum database: its name, in its key, and the host
// of the URL GOSUMDB gives for it.
const sumdbHost = "sumdb.bench.example"

// endpoint is where host is reached, host:port: 443 but for the checksum
// database, which cannot have the origins' port 443. Its TLS target is
// where the go command reaches it, as the default database's is on a
// build machine, so discovery finds it listed and adds no target.
func endpoint(host string) string {
	port := "443"
	if host == sumdbHost {
		port = strconv.Itoa(sumdbPort)
	}
	return net.JoinHostPort(host, port)
}

func main() {
	var (
		bin     = flag.String("mitmwatch", "bench/out/mitmwatch", "mitmwatch binary to measure")
		rtt     = flag.Duration("rtt", 20*time.Millisecond, "round-trip latency between the client and the origins and resolvers")
		runs    = flag.Int("runs", 7, "measured runs of each program (medians are reported)")
		bare    = flag.String("bare", "bench/out/barehandshakes", "the bare program check is compared with (bench/barehandshakes)")
		against = flag.String("against", "", "another mitmwatch binary (an earlier build) whose check runs in the same rounds, for a comparison under the same load")
		keep    = flag.String("keep", "", "directory to keep every run's output in (ROUND-PROGRAM.json), to see what a slow run waited for")
	)
	flag.Parse()
	// An interrupt ends the rounds; the namespaces are still removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := parent(ctx, *bin, *bare, *against, *keep, *rtt, *runs); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "checkbench:", err)
		os.Exit(1)
	}
}

// variant is one program the rounds run.
type variant struct {
	name      string
	bin       string   // the binary, when not the one measured
	args      []string // after the binary
	bare      bool
	blackhole bool // reference resolvers dropped while it runs
	// sumdb says the run checks the checksum database, as check does
	// with toolchain discovery on: its report must show it verified.
	sumdb bool
	// cache, when set, is the run's XDG_CACHE_HOME: another build keeps
	// its trees, snapshot and tool answers apart, as on a machine of its
	// own, and neither is measured reading what the other wrote.
	cache string
}

func parent(ctx context.Context, bin, bare, against, keep string, rtt time.Duration, runs int) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it builds network namespaces")
	}
	if runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if against != "" {
		if against, err = filepath.Abs(against); err != nil {
			return err
		}
	}
	if bare, err = filepath.Abs(bare); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "checkbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	b, err := newBenchLab(rtt)
	if err != nil {
		return err
	}
	defer b.Close()
	f, err := writeFiles(dir, b.net.PKI, b.sumdb.VerifierKey())
	if err != nil {
		return err
	}
	l, err := newLauncher(b.net.Client, f.resolvConf)
	if err != nil {
		return err
	}
	defer l.close()
	env := childEnv(os.Environ(), f.home, f.systemPEM)

	variants := []variant{
		{name: "bare", bare: true},
		{name: "check", args: []string{"check", "--config", f.rules, "-o", "json"}, sumdb: true},
		{name: "blackholed", args: []string{"check", "--config", f.rules, "-o", "json"}, blackhole: true, sumdb: true},
		// Discovery's own cost, the targets held equal: without it the
		// rules name the checksum database the go settings name.
		{name: "no-discovery", args: []string{"check", "--config", f.rulesNamed, "-o", "json", "--no-toolchain", "--no-audit"}, sumdb: true},
		// And without it at all, nothing asks the go settings for
		// GOSUMDB: the database discovery adds is not checked.
		{name: "no-discovery-no-sumdb", args: []string{"check", "--config", f.rules, "-o", "json", "--no-toolchain", "--no-audit"}},
	}
	if against != "" {
		variants = append(variants, variant{name: "against", bin: against, args: []string{"check", "--config", f.rules, "-o", "json"}, sumdb: true,
			cache: filepath.Join(dir, "against-cache")})
	}
	got := map[string][]sample{}
	var blackholed []roundDoc
	for i := 0; i <= runs; i++ { // round 0 warms caches and is dropped
		for j := range variants {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted in round %d", i)
			}
			v := variants[(i+j)%len(variants)]
			s, doc, err := runVariant(l, b, env, dir, bare, bin, v)
			if keep != "" {
				if werr := os.WriteFile(filepath.Join(keep, fmt.Sprintf("%d-%s.json", i, v.name)), s.out, 0o644); werr != nil {
					return werr
				}
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i, v.name, err)
			}
			if i == 0 {
				continue
			}
			got[v.name] = append(got[v.name], s)
			if v.blackhole {
				blackholed = append(blackholed, doc)
			}
		}
	}
	fmt.Printf("lab: %d hosts, their system resolver and %d reference resolvers behind %v of round-trip latency (netlab's wan relay); %d runs of each, interleaved; median [min-max]\n\n",
		len(hosts), len(references()), rtt, runs)
	writeReport(os.Stdout, got, blackholed, against)
	return nil
}

// runVariant runs one program once and checks its result: the bare
// program must succeed; check must write nothing to stderr and report
// every host ok, except with the references blackholed, where its report
// is returned for the summary; and a check that reads the checksum
// database must have verified it, blackholed or not.
func runVariant(l *launcher, b *benchLab, env []string, dir, bareBin, bin string, v variant) (sample, roundDoc, error) {
	if v.bare {
		var eps []string
		for _, h := range hosts {
			eps = append(eps, endpoint(h))
		}
		s, err := l.run(env, dir, bareBin, eps...)
		if err == nil && s.code != 0 {
			err = fmt.Errorf("bare handshakes failed (exit %d): %s", s.code, strings.TrimSpace(string(s.stderr)))
		}
		return s, roundDoc{}, err
	}
	var wantSumDB string
	if v.sumdb {
		var err error
		if wantSumDB, err = b.growSumDB(v.cache); err != nil {
			return sample{}, roundDoc{}, err
		}
	}
	if v.blackhole {
		if err := b.blackhole(true); err != nil {
			return sample{}, roundDoc{}, err
		}
	}
	if v.bin != "" {
		bin = v.bin
	}
	if v.cache != "" {
		env = append(slices.Clip(env), "XDG_CACHE_HOME="+v.cache)
	}
	s, err := l.run(env, dir, bin, v.args...)
	if v.blackhole {
		err = errors.Join(err, b.blackhole(false))
	}
	if err != nil {
		return s, roundDoc{}, err
	}
	if len(s.stderr) > 0 {
		// Whatever check says there is a problem of the lab's or of
		// check's, and no part of a default round on a sound machine.
		return s, roundDoc{}, fmt.Errorf("check wrote to stderr (exit %d):\n%s", s.code, strings.TrimRight(string(s.stderr), "\n"))
	}
	doc, err := parseRound(s.out)
	if err != nil {
		return s, doc, err
	}
	if !v.blackhole {
		err = doc.clean(s.code)
	}
	if err == nil && v.sumdb {
		if err = doc.sumdbVerified(wantSumDB); err == nil {
			b.sumdbKept[v.cache] = true
		}
	}
	return s, doc, err
}

// files are what the children read.
type files struct {
	rules string // rules.yaml
	// rulesNamed is rules.yaml naming the checksum database and module
	// proxy the go settings name, for a check without discovery.
	rulesNamed string
	resolvConf string // mounted over /etc/resolv.conf in the client namespace
	systemPEM  string // SSL_CERT_FILE: this machine's store and the lab's public root
	home       string // HOME, with the toolchain's settings
}

// writeFiles writes the configuration of the children into dir; sumdbKey
// is the checksum database's verifier key.
func writeFiles(dir string, pki *lab.PKI, sumdbKey string) (files, error) {
	f := files{
		rules:      filepath.Join(dir, "rules.yaml"),
		rulesNamed: filepath.Join(dir, "rules-sumdb.yaml"),
		resolvConf: filepath.Join(dir, "resolv.conf"),
		systemPEM:  filepath.Join(dir, "system.pem"),
		home:       filepath.Join(dir, "home"),
	}
	public := filepath.Join(dir, "public.pem")
	// The public roots cost what Mozilla's cost to parse: they are
	// Mozilla's, and the lab's stand-in public root.
	var mozilla []byte
	for r := range bundle.Roots() {
		mozilla = append(mozilla, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})...)
	}
	// The system store is this machine's, as x509.SystemCertPool reads it,
	// with the lab's root added as an administrator would.
	system, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	writes := map[string]string{
		public:       string(mozilla) + string(pki.PublicRoot.PEM),
		f.systemPEM:  string(system) + "\n" + string(pki.PublicRoot.PEM),
		f.rules:      rulesYAML(public),
		f.rulesNamed: rulesNamingSumDB(public, sumdbKey),
		f.resolvConf: "nameserver " + systemDNS.String() + "\n",
	}
	for name, content := range homeFiles(gosumdb(sumdbKey)) {
		writes[filepath.Join(f.home, name)] = content
	}
	for path, content := range writes {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return f, err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return f, err
		}
	}
	return f, nil
}

// rulesYAML is the default configuration apart from the target list, the
// public roots (the lab's origins are not Mozilla's), the reference
// resolvers (the lab's, behind the same latency) and the bogons: the
// default list less the benchmarking range the lab's addresses come from,
// which would make every answer a bogon that only the references can
// clear, unlike a registry's public address.
func rulesYAML(publicPEM string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "trust:\n  public_roots: %s\ndns:\n  reference_resolvers:\n", publicPEM)
	for _, r := range references() {
		if strings.HasPrefix(r, "https://") {
			// As the default DoH reference does, it carries its bootstrap
			// addresses: asking other resolvers for its name first would
			// cost it round trips the default never pays.
			fmt.Fprintf(&b, "    - {url: %q, bootstrap: [%s]}\n", r, dohRef)
			continue
		}
		fmt.Fprintf(&b, "    - %q\n", r)
	}
	b.WriteString("  bogons:\n")
	for _, p := range labBogons() {
		fmt.Fprintf(&b, "    - %s\n", p)
	}
	b.WriteString("targets:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "  - host: %s\n", h)
		if _, port, _ := net.SplitHostPort(endpoint(h)); port != "443" {
			fmt.Fprintf(&b, "    port: %s\n", port)
		}
	}
	return b.String()
}

// rulesNamingSumDB is rulesYAML naming, in its checksum_database section,
// the database and module proxy the go settings name: without discovery,
// check then checks the database discovery would add.
func rulesNamingSumDB(publicPEM, sumdbKey string) string {
	return rulesYAML(publicPEM) + fmt.Sprintf("checksum_database:\n  gosumdb: %q\n  goproxy: %q\n", gosumdb(sumdbKey), goproxy)
}

// labBogons is detector.DefaultBogons without the prefixes holding the
// lab's addresses.
func labBogons() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range detector.DefaultBogons {
		if !p.Contains(systemDNS) && !p.Contains(netlab.ClientAddr) {
			out = append(out, p)
		}
	}
	return out
}

// homeFiles are the children's home directory: go, npm, pip and git
// settings naming the benchmark's own hosts, so that discovery and the
// audit read and run what they would on a build machine and find targets
// already listed. gosumdb is GOSUMDB's value. The go env file is what
// `go env` reads, and what mitmwatch reads when it reads the file itself.
func homeFiles(gosumdb string) map[string]string {
	return map[string]string{
		".config/go/env":       "GOPROXY=" + goproxy + "\nGOSUMDB=" + gosumdb + "\n",
		".npmrc":               "registry=https://npm.bench.example/\n",
		".config/pip/pip.conf": "[global]\nindex-url = https://index.bench.example/simple\n",
		".gitconfig":           "[url \"https://git.bench.example/\"]\n\tinsteadOf = git@git.bench.example:\n",
	}
}

// goproxy is the GOPROXY value of the go settings.
const goproxy = "https://modules.bench.example,direct"

// gosumdb is the GOSUMDB value naming the benchmark's checksum database:
// its verifier key (name+hash+key), which any database but the go
// command's default needs, and the URL it is served at, since it cannot
// be on port 443.
func gosumdb(key string) string {
	return key + " https://" + endpoint(sumdbHost)
}

// childEnv is the children's environment: this one without what would
// configure the tools, a proxy or the trust store differently, plus HOME
// and SSL_CERT_FILE.
func childEnv(environ []string, home, systemPEM string) []string {
	drop := []string{"HOME=", "XDG_", "GO", "NPM_CONFIG_", "PIP_", "SSL_CERT_", "NODE_", "GIT_", "CARGO_",
		"DOCKER_", "VIRTUAL_ENV=", "REQUESTS_CA_BUNDLE=", "CURL_CA_BUNDLE=", "MITMWATCH_", "NO_COLOR="}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(k) + "="
		keep := !strings.HasSuffix(upper, "_PROXY=")
		for _, p := range drop {
			keep = keep && !strings.HasPrefix(upper, p)
		}
		if keep {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+home, "SSL_CERT_FILE="+systemPEM)
}

// roundDoc is what the benchmark reads of `check -o json`.
type roundDoc struct {
	Targets []struct {
		Host string `json:"host"`
		Port int    `json:"port"`
		// Protocol is empty for TLS, "gosumdb" for the checksum
		// database.
		Protocol      string `json:"protocol"`
		Verdict       string `json:"verdict"`
		Failure       string `json:"failure"`
		FailureDetail string `json:"failure_detail"`
		Findings      []struct {
			Reason string `json:"reason"`
		} `json:"findings"`
		SumDB *struct {
			Name        string `json:"name"`
			URL         string `json:"url"`
			Signature   string `json:"signature"`
			Consistency string `json:"consistency"`
			Detail      string `json:"consistency_detail"`
			Tree        *struct {
				Size int64 `json:"size"`
			} `json:"tree"`
		} `json:"sumdb"`
	} `json:"targets"`
}

// protocolSumDB is the checksum database target's protocol in the report.
const protocolSumDB = "gosumdb"

func parseRound(out []byte) (roundDoc, error) {
	var doc roundDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		return doc, fmt.Errorf("check output: %w", err)
	}
	return doc, nil
}

// clean refuses a round whose figures would mean nothing: a TLS target
// missing or added, or any target not ok.
func (d roundDoc) clean(code int) error {
	var got, want []string
	for _, t := range d.Targets {
		if t.Protocol == "" {
			got = append(got, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
		}
	}
	for _, h := range hosts {
		want = append(want, endpoint(h))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("check reported the TLS targets %v, want the %d benchmark hosts %v", got, len(want), want)
	}
	for _, t := range d.Targets {
		if t.Verdict != "ok" {
			what := t.Host
			if t.Protocol != "" {
				what = t.Protocol + "://" + t.Host
			}
			return fmt.Errorf("check: %s is %s, want ok: the benchmark measures a clean round", what, t.Verdict)
		}
	}
	if code != 0 {
		return fmt.Errorf("check exited %d on a clean round", code)
	}
	return nil
}

// sumdbVerified refuses a round that did not check the benchmark's
// checksum database for real: no result for it, a failure, a signature
// that did not verify, or a consistency other than want ("first" before
// any tree was kept, "extends" after, the log having grown since).
func (d roundDoc) sumdbVerified(want string) error {
	found := 0
	for _, t := range d.Targets {
		if t.Protocol != protocolSumDB {
			continue
		}
		found++
		st := t.SumDB
		switch {
		case t.Host != sumdbHost:
			return fmt.Errorf("check reported the checksum database %s, want %s: the go settings the benchmark wrote name that one", t.Host, sumdbHost)
		case t.Failure != "":
			return fmt.Errorf("checksum database %s: %s: %s", t.Host, t.Failure, t.FailureDetail)
		case st == nil:
			return fmt.Errorf("checksum database %s: the report has no sumdb state", t.Host)
		case st.Signature != "verified" || st.Tree == nil:
			return fmt.Errorf("checksum database %s: tree head at %s not verified (signature %q)", t.Host, st.URL, st.Signature)
		case st.Consistency != want:
			why := "no check had kept a tree yet"
			if want == "extends" {
				why = "the log grew since the last check kept its tree"
			}
			if st.Detail != "" {
				why = st.Detail + "; " + why
			}
			return fmt.Errorf("checksum database %s: consistency %q, want %q (%s)", t.Host, st.Consistency, want, why)
		}
	}
	if found != 1 {
		return fmt.Errorf("check reported %d checksum database results, want 1 for %s: the go settings name it (GOSUMDB), so a default check must verify it", found, sumdbHost)
	}
	return nil
}

// withReason counts the targets carrying a finding of reason.
func (d roundDoc) withReason(reason string) int {
	n := 0
	for _, t := range d.Targets {
		for _, f := range t.Findings {
			if f.Reason == reason {
				n++
				break
			}
		}
	}
	return n
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
