package passive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

var update = flag.Bool("update", false, "record the captures again and rewrite the fixtures under testdata/ (needs root, tcpdump, curl, openssl)")

// require skips a test that needs something the machine lacks, unless
// MITMWATCH_REQUIRE_TOOLS=1 (set by CI) makes that a failure.
func require(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" || *update {
		t.Fatalf("%s is required (MITMWATCH_REQUIRE_TOOLS=1)", what)
	}
	t.Skipf("%s is not available", what)
}

func haveTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// labServers are the lab's servers the scenarios talk to.
type labServers struct {
	pki         *lab.PKI
	origin13    *lab.Origin
	origin12    *lab.Origin
	forger      *lab.Forger
	interceptor *lab.Interceptor
	sentinel    *lab.SentinelRelay
	plain       *lab.Plain
	publicPEM   string // file with the public root, for curl and openssl
}

func newLabServers(t *testing.T) *labServers {
	t.Helper()
	p, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	s := &labServers{pki: p}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s.origin13, err = lab.NewOrigin(p, lab.OriginOptions{})
	must(err)
	t.Cleanup(func() { s.origin13.Close() })
	s.origin12, err = lab.NewOrigin(p, lab.OriginOptions{MaxVersion: tls.VersionTLS12})
	must(err)
	t.Cleanup(func() { s.origin12.Close() })
	s.forger, err = lab.NewForger(lab.ForgerOptions{CA: p.ProductRoot, MaxVersion: tls.VersionTLS12})
	must(err)
	t.Cleanup(func() { s.forger.Close() })
	s.interceptor, err = lab.NewInterceptor(p, lab.InterceptorOptions{Routes: lab.Routes{"sum.lab.example": s.origin13.Addr()}})
	must(err)
	t.Cleanup(func() { s.interceptor.Close() })
	s.sentinel, err = lab.NewSentinelRelay(s.origin13.Addr())
	must(err)
	t.Cleanup(func() { s.sentinel.Close() })
	s.plain, err = lab.NewPlain(lab.PlainOptions{})
	must(err)
	t.Cleanup(func() { s.plain.Close() })
	s.publicPEM = filepath.Join(t.TempDir(), "public.pem")
	must(os.WriteFile(s.publicPEM, p.PublicPEM(), 0o644))
	return s
}

// server is the address a scenario's client connects to.
func (s *labServers) server(c capture) string {
	switch c.file {
	case "go-tls13-origin.pcapng":
		return s.origin13.Addr()
	case "curl-tls12-origin.pcap":
		return s.origin12.Addr()
	case "openssl-forger-fortigate.pcap":
		return s.forger.Addr()
	case "curl-goproxy-tls12.pcap":
		return s.interceptor.Addr()
	case "go-sentinel-relay.pcap":
		return s.sentinel.Addr()
	case "curl-plain-443.pcap":
		return s.plain.Addr()
	}
	panic("no server for " + c.file)
}

// run runs a scenario's client to completion.
func (s *labServers) run(ctx context.Context, c capture, addr string) error {
	_, port, _ := net.SplitHostPort(addr)
	switch c.client {
	case "go":
		d := tls.Dialer{Config: &tls.Config{ServerName: c.host, RootCAs: s.pki.PublicPool(), NextProtos: []string{"h2", "http/1.1"}}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if c.file == "go-sentinel-relay.pcap" && strings.Contains(err.Error(), "downgrade") {
				return nil // what the scenario is about
			}
			return err
		}
		return conn.Close()
	case "curl":
		args := []string{"-sS", "-o", "/dev/null", "--max-time", "10", "--cacert", s.publicPEM, "--tls-max", "1.2"}
		if c.file == "curl-goproxy-tls12.pcap" {
			args = append(args, "-k", "-x", "http://"+addr)
		} else {
			args = append(args, "--connect-to", c.host+":443:127.0.0.1:"+port)
		}
		out, err := exec.CommandContext(ctx, "curl", append(args, "https://"+c.host+"/")...).CombinedOutput()
		if err != nil && c.file != "curl-plain-443.pcap" {
			return fmt.Errorf("curl: %w: %s", err, out)
		}
		return nil
	case "openssl":
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", addr, "-servername", c.host, "-brief")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil && !bytes.Contains(out, []byte("CONNECTION ESTABLISHED")) {
			return fmt.Errorf("openssl: %w: %s", err, out)
		}
		return nil
	}
	return fmt.Errorf("unknown client %q", c.client)
}

// TestRecordLab records every scenario with a real client against the lab
// on loopback, captured by tcpdump or by this package's own AF_PACKET
// capture, and judges the recordings. With -update it rewrites the
// fixtures under testdata/.
func TestRecordLab(t *testing.T) {
	require(t, os.Geteuid() == 0, "root (for packet capture)")
	require(t, haveTool("curl") && haveTool("openssl"), "curl and openssl")
	s := newLabServers(t)
	dir := t.TempDir()
	m := manifest{}
	r := roots{public: s.pki.PublicPool(), system: s.pki.SystemPool()}
	for _, c := range captures {
		t.Run(c.file, func(t *testing.T) {
			if strings.HasPrefix(c.via, "tcpdump") {
				require(t, haveTool("tcpdump"), "tcpdump")
			}
			addr := s.server(c)
			_, portText, _ := net.SplitHostPort(addr)
			port, _ := strconv.Atoi(portText)
			path := filepath.Join(dir, c.file)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := record(ctx, c, path, uint16(port), func() error { return s.run(ctx, c, addr) }); err != nil {
				t.Fatal(err)
			}
			m[c.file] = []uint16{uint16(port)}
			assertCapture(t, c, path, Options{Ports: []uint16{uint16(port)}}, r)
			if *update {
				copyFile(t, path, filepath.Join("testdata", c.file))
			}
		})
	}
	if *update && !t.Failed() {
		b, _ := json.MarshalIndent(m, "", "  ")
		writeFile(t, manifestFile, append(b, '\n'))
		writeFile(t, "testdata/lab-public-roots.pem", s.pki.PublicPEM())
		writeFile(t, "testdata/lab-system-roots.pem", s.pki.SystemPEM())
	}
}

// record captures the traffic of port on loopback while fn runs.
func record(ctx context.Context, c capture, path string, port uint16, fn func() error) error {
	switch c.via {
	case "live":
		return recordLive(ctx, path, c.pcapng, port, 0, fn)
	case "tcpdump-lo":
		return recordTcpdump(ctx, path, "lo", port, fn)
	case "tcpdump-any":
		return recordTcpdump(ctx, path, "any", port, fn)
	}
	return fmt.Errorf("unknown capture %q", c.via)
}

// recordLive captures with this package's AF_PACKET capture. It stops once
// fn returned and the ring stayed empty for a poll interval.
// frame bounds a packet (0: the default, enough for loopback's 64 KiB).
func recordLive(ctx context.Context, path string, ng bool, port uint16, frame int, fn func() error) error {
	live, err := OpenLive("lo", LiveOptions{Ports: []uint16{port}, PollTimeout: 200 * time.Millisecond, RingSize: 64 << 20, FrameSize: frame})
	if err != nil {
		return err
	}
	defer live.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	var write func([]byte, gopacket.CaptureInfo) error
	if ng {
		w, err := pcapgo.NewNgWriter(bw, layers.LinkTypeEthernet)
		if err != nil {
			return err
		}
		defer w.Flush()
		write = func(b []byte, ci gopacket.CaptureInfo) error { ci.InterfaceIndex = 0; return w.WritePacket(ci, b) }
	} else {
		w := pcapgo.NewWriterNanos(bw)
		if err := w.WriteFileHeader(liveFrame, layers.LinkTypeEthernet); err != nil {
			return err
		}
		write = func(b []byte, ci gopacket.CaptureInfo) error { ci.InterfaceIndex = 0; return w.WritePacket(ci, b) }
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	var fnErr error
	finished := false
	for ctx.Err() == nil {
		data, ci, err := live.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			if err := write(data, ci); err != nil {
				return err
			}
			continue
		case !IsTimeout(err):
			return err
		}
		if finished {
			break
		}
		select {
		case fnErr = <-done:
			finished = true
		default:
		}
	}
	if !finished {
		return fmt.Errorf("client did not finish: %w", ctx.Err())
	}
	if fnErr != nil {
		return fnErr
	}
	if drops, err := live.Drops(); err == nil && drops > 0 {
		return fmt.Errorf("the kernel dropped %d packets", drops)
	}
	return bw.Flush()
}

// recordTcpdump captures with tcpdump, which writes each packet as it
// comes (-U). It waits for tcpdump to say it listens, and after fn for the
// file to stop growing, then stops it.
func recordTcpdump(ctx context.Context, path, iface string, port uint16, fn func() error) error {
	cmd := exec.CommandContext(ctx, "tcpdump", "-i", iface, "-U", "-s", "0", "-w", path, "tcp port "+strconv.Itoa(int(port)))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			ready = true
			break
		}
	}
	if !ready {
		return errors.New("tcpdump did not start listening")
	}
	go io.Copy(io.Discard, stderr)
	if err := fn(); err != nil {
		return err
	}
	last := int64(-1)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() == last && last > 24 {
			break
		}
		last = fi.Size()
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSniff follows live handshakes with the kernel filter that keeps only
// what a handshake needs, as `mitmwatch sniff` does, and stops as soon as
// the connection is reported.
func TestSniff(t *testing.T) {
	require(t, os.Geteuid() == 0, "root (for packet capture)")
	require(t, haveTool("curl"), "curl")
	s := newLabServers(t)
	addr := s.origin12.Addr()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	live, err := OpenLive("lo", LiveOptions{Ports: []uint16{uint16(port)}, HandshakeOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := roots{public: s.pki.PublicPool(), system: s.pki.SystemPool()}
	a := &Analysis{PublicRoots: r.public, SystemRoots: r.system}
	tr := NewTracker(Options{Ports: []uint16{uint16(port)}}, func(c *Conn) {
		a.Add(c)
		cancel() // one connection is all this test makes
	})
	done := make(chan error, 1)
	go func() { done <- Sniff(ctx, live, tr) }()
	c := capture{file: "curl-tls12-origin.pcap", host: "registry.lab.example", client: "curl"}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if err := s.run(cctx, c, addr); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rep := judge(a, detector.Policy{})
	if len(rep.Results) != 1 || rep.Results[0].Verdict != "ok" || rep.Results[0].Obs.TLS == nil || len(rep.Results[0].Obs.TLS.Chain) == 0 {
		t.Fatalf("results %+v", rep.Results)
	}
	if st := tr.Stats(); st.Packets > 12 {
		t.Errorf("the handshake filter let %d packets through", st.Packets)
	}
}
