// Command live measures `mitmwatch sniff` on a link carrying a bulk TLS
// download at 1 Gbit/s with handshakes made throughout: the sniffer's CPU,
// the kernel's drops, and whether every handshake was reported. It is the
// live half of the passive issue's benchmark (bench/pcap.sh is the
// offline half).
//
// As root it builds two network namespaces joined by a veth pair, with
// segmentation and receive offloads off so that packets have the size a
// NIC carries (the worst case for a capture: ~83,000 packets a second),
// serves TLS in one and runs the client and the sniffer in the other.
// Everything it creates is removed when it ends.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

const (
	serverAddr = "198.18.9.2"
	clientAddr = "198.18.9.1"
)

func main() {
	var (
		bin        = flag.String("mitmwatch", "bench/out/mitmwatch", "mitmwatch binary to measure")
		rate       = flag.Float64("gbit", 1, "bulk download rate, Gbit/s")
		dur        = flag.Duration("for", 10*time.Second, "how long the download runs")
		handshakes = flag.Int("handshakes", 200, "TLS handshakes made during the download")
		serve      = flag.Bool("serve", false, "child mode: serve TLS on :443")
		client     = flag.Bool("client", false, "child mode: download and handshake")
	)
	flag.Parse()
	var err error
	switch {
	case *serve:
		err = serveTLS(*rate)
	case *client:
		err = runClient(*dur, *handshakes)
	default:
		err = orchestrate(*bin, *dur, *handshakes, *rate)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "live:", err)
		os.Exit(1)
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func orchestrate(bin string, dur time.Duration, handshakes int, rate float64) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root (network namespaces and packet capture)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	id := fmt.Sprintf("%d", os.Getpid())
	cns, sns := "mwlive-c-"+id, "mwlive-s-"+id
	defer exec.Command("ip", "netns", "del", cns).Run()
	defer exec.Command("ip", "netns", "del", sns).Run()
	for _, c := range [][]string{
		{"netns", "add", cns}, {"netns", "add", sns},
		{"link", "add", "mwc0", "netns", cns, "type", "veth", "peer", "name", "mws0", "netns", sns},
		{"-n", cns, "addr", "add", clientAddr + "/24", "dev", "mwc0"},
		{"-n", sns, "addr", "add", serverAddr + "/24", "dev", "mws0"},
		{"-n", cns, "link", "set", "mwc0", "up"}, {"-n", sns, "link", "set", "mws0", "up"},
		{"-n", cns, "link", "set", "lo", "up"}, {"-n", sns, "link", "set", "lo", "up"},
	} {
		if err := run("ip", c...); err != nil {
			return err
		}
	}
	for ns, dev := range map[string]string{cns: "mwc0", sns: "mws0"} {
		if err := run("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"); err != nil {
			return err
		}
	}
	srv := exec.Command("ip", "netns", "exec", sns, self, "-serve", fmt.Sprintf("-gbit=%g", rate))
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()

	var sniffOut, sniffErr strings.Builder
	sniff := exec.Command("ip", "netns", "exec", cns, bin, "sniff", "--interface", "mwc0",
		"--duration", (dur + 3*time.Second).String(), "-o", "json", "--no-toolchain")
	sniff.Stdout, sniff.Stderr = &sniffOut, &sniffErr
	if err := sniff.Start(); err != nil {
		return err
	}
	time.Sleep(time.Second) // the capture is open and the server listens
	cl := exec.Command("ip", "netns", "exec", cns, self, "-client", "-for", dur.String(), fmt.Sprintf("-handshakes=%d", handshakes))
	out, err := cl.CombinedOutput()
	if err != nil {
		return fmt.Errorf("client: %v: %s", err, out)
	}
	sniff.Wait() // exits 0..3 by verdict: not an error here
	cpu := sniff.ProcessState.UserTime() + sniff.ProcessState.SystemTime()
	var doc struct {
		Passive struct {
			Packets     uint64 `json:"packets"`
			Handshake   uint64 `json:"handshake_packets"`
			Connections uint64 `json:"connections"`
		} `json:"passive"`
	}
	if err := json.Unmarshal([]byte(sniffOut.String()), &doc); err != nil {
		return fmt.Errorf("sniff output: %v: %s %s", err, sniffOut.String(), sniffErr.String())
	}
	var res struct {
		Bytes      int64
		Handshakes int
		Seconds    float64
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("client output: %v: %s", err, out)
	}
	wall := dur + 4*time.Second // the sniffer ran from a second before to three after
	fmt.Printf("link: veth between two namespaces, offloads off; bulk TLS download %.2f Gbit/s for %.1f s, %d handshakes during it\n",
		float64(res.Bytes)*8/res.Seconds/1e9, res.Seconds, res.Handshakes)
	fmt.Printf("sniffer CPU: %v (user %v, system %v) over %v = %.2f%% of one core (target < 2%%)\n", cpu.Round(time.Millisecond),
		sniff.ProcessState.UserTime().Round(time.Millisecond), sniff.ProcessState.SystemTime().Round(time.Millisecond), wall, 100*cpu.Seconds()/wall.Seconds())
	fmt.Printf("packets the filter let through: %d (%d belonging to handshakes)\n", doc.Passive.Packets, doc.Passive.Handshake)
	fmt.Printf("connections reported: %d of %d made (the download and the handshakes)\n", doc.Passive.Connections, res.Handshakes+1)
	if drops := strings.TrimSpace(sniffErr.String()); drops != "" {
		fmt.Printf("sniffer said: %s\n", drops)
	} else {
		fmt.Println("kernel drops: none reported")
	}
	return nil
}

// serveTLS answers every connection on :443 with TLS; a client that asks
// for "bulk" gets data at rate Gbit/s until it hangs up.
func serveTLS(rate float64) error {
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", serverAddr+":443", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return err
	}
	chunk := make([]byte, 64<<10)
	every := pace(len(chunk), rate)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "bulk" {
				return
			}
			next := time.Now()
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
				next = next.Add(every)
				time.Sleep(time.Until(next))
			}
		}()
	}
}

// pace is how often a chunk of n bytes goes out to make rate Gbit/s.
func pace(n int, rate float64) time.Duration {
	return time.Duration(float64(n*8) / (rate * 1e9) * float64(time.Second))
}

func runClient(dur time.Duration, handshakes int) error {
	cfg := &tls.Config{ServerName: "bulk.bench.example", InsecureSkipVerify: true} // the sniffer judges; this only loads the link
	bulk, err := tls.Dial("tcp", serverAddr+":443", cfg)
	if err != nil {
		return err
	}
	if _, err := bulk.Write([]byte("bulk")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var got atomic.Int64
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := bulk.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	start := time.Now()
	made := 0
	every := dur / time.Duration(handshakes+1)
	for i := 0; i < handshakes && ctx.Err() == nil; i++ {
		time.Sleep(every)
		c, err := tls.Dial("tcp", serverAddr+":443", &tls.Config{ServerName: fmt.Sprintf("h%03d.bench.example", i), InsecureSkipVerify: true})
		if err == nil {
			made++
			c.Close()
		}
	}
	<-ctx.Done()
	secs := time.Since(start).Seconds()
	bulk.Close()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"Bytes": got.Load(), "Handshakes": made, "Seconds": secs})
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench.example"},
		DNSNames: []string{"*.bench.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
