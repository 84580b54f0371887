// Command checkbench measures `mitmwatch check` against the lab: 13 targets
// behind an origin that adds a fixed latency per round trip. It compares
// the check's wall time with the slowest bare crypto/tls handshake measured
// in the same run, its CPU per target with a bare verified handshake's, and
// reports its peak RSS. Both clients run as child processes, so the lab's
// own CPU is not counted against either.
//
// Run it through bench/check.sh, which builds the binary first.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/scenario"
)

// hosts are the 13 targets: the default rules' ten and three toolchain-like
// names of the lab's own.
var hosts = []string{
	"github.com", "codeload.github.com", "objects.githubusercontent.com", "pypi.org",
	"files.pythonhosted.org", "index.crates.io", "static.crates.io", "registry-1.docker.io",
	"ghcr.io", "repo.maven.apache.org", "proxy.lab.example", "sum.lab.example", "npm.lab.example",
}

// pathOff turns the path probes off in the benchmark's rules.yaml: on
// loopback the kernel answers the SYN at once while the lab origin delays
// its answers, which is what a splicer looks like; the figures measure the
// TLS judgement the issue compares with bare handshakes.
const pathOff = "probe:\n  path: {samples: 0, max_hops: 0}\n"

// probeRules is the probe section of the benchmark's rules.yaml.
var probeRules string

func main() {
	var (
		bin     = flag.String("mitmwatch", "bench/out/mitmwatch", "mitmwatch binary to measure")
		latency = flag.Duration("latency", 20*time.Millisecond, "latency the origin adds per round trip")
		runs    = flag.Int("runs", 7, "measured runs (medians are reported)")
		bare    = flag.String("bare", "", "child mode: handshake with every host at this address")
		pemFile = flag.String("roots", "", "child mode: PEM roots to verify against")
		burst   = flag.Bool("burst", false, "child mode: all handshakes at once, as check does")
		dnsLat  = flag.Duration("dns-latency", 5*time.Millisecond, "latency of every lab resolver, for the DNS measurement")
		path    = flag.Bool("path", false, "keep rules.yaml's path probes (RTT split, TTL-limited hellos); the lab adds its latency after the kernel set TCP up, which the RTT split rightly flags as a splicer, so use -latency under 15ms with it")
		dnsAddr = flag.String("dns-listen", "127.0.0.77:53", "where the lab's system resolver listens (resolv.conf cannot name a port, so it needs port 53: run as root); empty skips the DNS measurement")
	)
	flag.Parse()
	if !*path {
		probeRules = pathOff
	}
	if *bare != "" {
		if err := bareChild(*bare, *pemFile, *burst); err != nil {
			fmt.Fprintln(os.Stderr, "checkbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := parent(*bin, *latency, *runs, *dnsLat, *dnsAddr); err != nil {
		fmt.Fprintln(os.Stderr, "checkbench:", err)
		os.Exit(1)
	}
}

// bareChild performs one verified handshake per host — one after another,
// or all at once with burst — and prints each handshake's wall time (dial
// included) in milliseconds.
func bareChild(addr, pemFile string, burst bool) error {
	data, err := os.ReadFile(pemFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		return fmt.Errorf("%s: no certificates", pemFile)
	}
	ms := make([]float64, len(hosts))
	errs := make([]error, len(hosts))
	handshake := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		var d net.Dialer
		raw, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			errs[i] = err
			return
		}
		c := tls.Client(raw, &tls.Config{ServerName: hosts[i], RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
		errs[i] = c.HandshakeContext(ctx)
		ms[i] = float64(time.Since(start).Microseconds()) / 1000
		c.Close()
	}
	var wg sync.WaitGroup
	for i := range hosts {
		if !burst {
			handshake(i)
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); handshake(i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(ms)
}

type sample struct {
	wall   time.Duration
	cpu    time.Duration
	maxRSS int64 // bytes
	out    []byte
}

func runChild(name string, args ...string) (sample, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 0 {
			return sample{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{wall: wall, cpu: cpu, maxRSS: ru.Maxrss * 1024, out: out}, nil
}

func parent(bin string, latency time.Duration, runs int, dnsLatency time.Duration, dnsListen string) error {
	env, err := scenario.NewEnv(scenario.Options{Latency: latency})
	if err != nil {
		return err
	}
	defer env.Close()
	dir, err := os.MkdirTemp("", "checkbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	public, system := filepath.Join(dir, "public.pem"), filepath.Join(dir, "system.pem")
	if err := os.WriteFile(public, env.PKI.PublicPEM(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(system, env.PKI.SystemPEM(), 0o644); err != nil {
		return err
	}
	var rules strings.Builder
	fmt.Fprintf(&rules, "toolchain: none\ntrust:\n  public_roots: %s\n  system_roots: %s\ndns:\n  reference_resolvers: []\n  canary: false\n%stargets:\n", public, system, probeRules)
	for _, h := range hosts {
		fmt.Fprintf(&rules, "  - host: %s\n    address: %s\n", h, env.Origin.Addr())
	}
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(rules.String()), 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	dnsRules, err := writeDNSRules(env, dir, public, system, dnsLatency, dnsListen)
	if err != nil {
		return err
	}

	var walls, dnsWalls, slowest, burstSlowest, checkCPU, bareCPU, rss []float64
	for i := 0; i < runs+1; i++ { // the first run warms caches and is dropped
		b, err := runChild(self, "-bare", env.Origin.Addr(), "-roots", public)
		if err != nil {
			return err
		}
		var ms []float64
		if err := json.Unmarshal(b.out, &ms); err != nil {
			return fmt.Errorf("bare child output: %w", err)
		}
		bb, err := runChild(self, "-bare", env.Origin.Addr(), "-roots", public, "-burst")
		if err != nil {
			return err
		}
		var bms []float64
		if err := json.Unmarshal(bb.out, &bms); err != nil {
			return fmt.Errorf("bare burst output: %w", err)
		}
		c, err := runChild(bin, "check", "--config", rulesFile, "-o", "json", "--no-toolchain", "--no-audit")
		if err != nil {
			return err
		}
		if err := allOK(c.out); err != nil {
			return err
		}
		var dnsWall time.Duration
		if dnsRules != "" {
			d, err := runChild(bin, "check", "--config", dnsRules, "-o", "json", "--no-toolchain", "--no-audit")
			if err != nil {
				return err
			}
			if err := allOK(d.out); err != nil {
				return fmt.Errorf("with DNS: %w", err)
			}
			dnsWall = d.wall
		}
		if i == 0 {
			continue
		}
		walls = append(walls, msOf(c.wall))
		dnsWalls = append(dnsWalls, msOf(dnsWall))
		slowest = append(slowest, slices.Max(ms))
		burstSlowest = append(burstSlowest, slices.Max(bms))
		checkCPU = append(checkCPU, msOf(c.cpu)/float64(len(hosts)))
		bareCPU = append(bareCPU, msOf(b.cpu)/float64(len(hosts)))
		rss = append(rss, float64(c.maxRSS)/(1<<20))
	}
	w, s, bs, cc, bc, r := median(walls), median(slowest), median(burstSlowest), median(checkCPU), median(bareCPU), median(rss)
	fmt.Printf("lab: %d targets, %v added per round trip, %d runs (medians)\n", len(hosts), latency, runs)
	fmt.Printf("%-44s %10s %10s %8s %8s\n", "measure", "mitmwatch", "bare", "ratio", "target")
	fmt.Printf("%-44s %8.1fms %8.1fms %8.2f %8s\n", "wall: check vs slowest bare handshake", w, s, w/s, "<=1.3")
	fmt.Printf("%-44s %8.1fms %8.1fms %8.2f %8s\n", "wall: check vs slowest of 13 bare at once", w, bs, w/bs, "-")
	fmt.Printf("%-44s %8.2fms %8.2fms %8.2f %8s\n", "CPU per target vs per bare verified handshake", cc, bc, cc/bc, "<=2")
	fmt.Printf("%-44s %8.1fMB %10s %8s %8s\n", "peak RSS of check", r, "-", "-", "<=40MB")
	if dnsRules != "" {
		dw := median(dnsWalls)
		fmt.Printf("%-44s %8.1fms %8.1fms %8.2f %8s\n", "wall with DNS (system + 3 references)", dw, s, dw/s, "-")
		fmt.Printf("%-44s %8.1fms %8.1fms %8.2f %8s\n", "DNS cost vs one resolver round trip", dw-w, msOf(dnsLatency), (dw-w)/msOf(dnsLatency), "<=1 RTT")
	}
	return nil
}

// writeDNSRules starts the lab's resolvers — a system one on dnsListen and
// references over UDP, DNS over TLS and DNS over HTTPS, all answering the
// 13 names with the origin's address after dnsLatency — and writes a
// rules.yaml whose targets are resolved through them.
func writeDNSRules(env *scenario.Env, dir, public, system string, dnsLatency time.Duration, dnsListen string) (string, error) {
	if dnsListen == "" {
		return "", nil
	}
	zone := map[string][]netip.Addr{}
	for _, h := range hosts {
		zone[h] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	opts := lab.DNSOptions{Zone: zone, Latency: dnsLatency}
	sysOpts := opts
	sysOpts.Listen = dnsListen
	sys, err := lab.NewDNSServer(sysOpts)
	if err != nil {
		return "", fmt.Errorf("system resolver on %s (needs root; -dns-listen= skips): %w", dnsListen, err)
	}
	env.Track(sys)
	udp, err := lab.NewDNSServer(opts)
	if err != nil {
		return "", err
	}
	env.Track(udp)
	dot, err := lab.NewDoTServer(env.PKI, opts)
	if err != nil {
		return "", err
	}
	env.Track(dot)
	doh, err := lab.NewDoHServer(env.PKI, opts)
	if err != nil {
		return "", err
	}
	env.Track(doh)
	host, _, _ := net.SplitHostPort(dnsListen)
	resolvConf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+host+"\n"), 0o644); err != nil {
		return "", err
	}
	_, port, _ := net.SplitHostPort(env.Origin.Addr())
	var b strings.Builder
	fmt.Fprintf(&b, "toolchain: none\ntrust:\n  public_roots: %s\n  system_roots: %s\n", public, system)
	fmt.Fprintf(&b, "dns:\n  resolv_conf: %s\n  reference_resolvers: [\"udp://%s\", \"tls://%s#%s\", \"%s\"]\n  canary: true\n  bogons: []\n",
		resolvConf, udp.Addr(), dot.Addr(), lab.DNSHost, doh.URL())
	b.WriteString(probeRules + "targets:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "  - host: %s\n    port: %s\n", h, port)
	}
	path := filepath.Join(dir, "rules-dns.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

func allOK(out []byte) error {
	var doc struct {
		Targets []struct {
			Host, Verdict string
		} `json:"targets"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return fmt.Errorf("check output: %w", err)
	}
	if len(doc.Targets) != len(hosts) {
		return fmt.Errorf("check reported %d targets, want %d", len(doc.Targets), len(hosts))
	}
	for _, t := range doc.Targets {
		if t.Verdict != "ok" {
			return fmt.Errorf("check: %s is %s, want ok: the benchmark measures a clean round", t.Host, t.Verdict)
		}
	}
	return nil
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
