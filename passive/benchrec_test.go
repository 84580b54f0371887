package passive

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/mitmwatch/mitmwatch/lab"
)

// TestRecordBench records the capture bench/pcap.sh measures: real build
// traffic in a network namespace of its own (loopback with a 1500-byte MTU
// and segmentation offload off, so packets are the size a NIC carries):
// handshakes of Go's client and curl with a TLS 1.3 and a TLS 1.2 origin on
// port 443, and bulk downloads through both. It then repeats the recording,
// shifted in time, up to MITMWATCH_BENCH_MB megabytes. It runs only when
// MITMWATCH_BENCH_OUT names the output directory.
func TestRecordBench(t *testing.T) {
	out := os.Getenv("MITMWATCH_BENCH_OUT")
	if out == "" {
		t.Skip("MITMWATCH_BENCH_OUT is not set: run through bench/pcap.sh")
	}
	mb, _ := strconv.Atoi(os.Getenv("MITMWATCH_BENCH_MB"))
	if mb <= 0 {
		mb = 200
	}
	p, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	origin, err := lab.NewOrigin(p, lab.OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	bulk := make([]byte, 1<<20)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		for range min(n, 64) {
			if _, err := w.Write(bulk); err != nil {
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
	for _, s := range []struct {
		addr string
		max  uint16
	}{{"127.0.0.1:443", 0}, {"127.0.0.2:443", tls.VersionTLS12}} {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			t.Fatalf("%v (run inside a network namespace of its own, as bench/pcap.sh does)", err)
		}
		cfg := &tls.Config{MaxVersion: s.max, NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return origin.Certificate(h.ServerName) }}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(tls.NewListener(ln, cfg))
		defer srv.Close()
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, p.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	base := filepath.Join(out, "base.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	names := []string{"proxy.lab.example", "sum.lab.example", "npm.lab.example", "registry.lab.example", "git.lab.example"}
	err = recordLive(ctx, base, false, 443, 4096, func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		wg.Add(3)
		go func() { // Go's client: handshakes with both origins
			defer wg.Done()
			for i := range 150 {
				addr := "127.0.0.1:443"
				if i%3 == 2 {
					addr = "127.0.0.2:443"
				}
				c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: names[i%len(names)], RootCAs: p.PublicPool(), NextProtos: []string{"h2", "http/1.1"}})
				if err != nil {
					errs <- err
					return
				}
				c.Close()
			}
		}()
		go func() { // curl: requests, one process each
			defer wg.Done()
			for i := range 50 {
				ip := "127.0.0.1"
				if i%2 == 1 {
					ip = "127.0.0.2"
				}
				name := names[i%len(names)]
				if err := curl(ctx, ca, name, ip, "https://"+name+"/"); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // bulk downloads, as a module or package download is
			defer wg.Done()
			if err := curl(ctx, ca, "proxy.lab.example", "127.0.0.1", "https://proxy.lab.example/?mb=24"); err != nil {
				errs <- err
				return
			}
			if err := curl(ctx, ca, "npm.lab.example", "127.0.0.2", "https://npm.lab.example/?mb=8"); err != nil {
				errs <- err
			}
		}()
		wg.Wait()
		close(errs)
		return <-errs
	})
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(out, "big.pcap")
	n, err := repeat(base, big, int64(mb)<<20)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(big)
	t.Logf("%s: %d packets, %d MB", big, n, fi.Size()>>20)
}

func curl(ctx context.Context, ca, name, ip, url string) error {
	out, err := exec.CommandContext(ctx, "curl", "-sS", "-o", "/dev/null", "--max-time", "60", "--limit-rate", "50M", "--cacert", ca,
		"--resolve", name+":443:"+ip, url).CombinedOutput()
	if err != nil {
		return fmt.Errorf("curl %s: %w: %s", url, err, out)
	}
	return nil
}

// repeat writes the packets of from again and again into to, each copy
// shifted after the previous one in time, until to holds size bytes. It
// returns the number of packets written.
func repeat(from, to string, size int64) (int, error) {
	var pkts []packet
	f, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	r, err := pcapgo.NewReader(bufio.NewReader(f))
	if err != nil {
		return 0, err
	}
	var bytes int64
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkts = append(pkts, packet{data, ci, LinkType(r.LinkType())})
		bytes += int64(16 + len(data))
	}
	f.Close()
	if len(pkts) == 0 {
		return 0, fmt.Errorf("%s: no packets", from)
	}
	span := pkts[len(pkts)-1].ci.Timestamp.Sub(pkts[0].ci.Timestamp) + time.Minute
	o, err := os.Create(to)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	bw := bufio.NewWriterSize(o, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(liveFrame, layers.LinkTypeEthernet); err != nil {
		return 0, err
	}
	n := 0
	buf := make([]byte, 0, 1<<16)
	for copyN := 0; int64(copyN)*bytes < size; copyN++ {
		shift := time.Duration(copyN) * span
		for _, p := range pkts {
			ci := p.ci
			ci.Timestamp = ci.Timestamp.Add(shift)
			buf = append(buf[:0], p.data...)
			movePort(buf, uint16(copyN*7919))
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: ci.CaptureLength, Length: ci.Length}, buf); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, bw.Flush()
}

// movePort shifts the client port of an Ethernet/IPv4/TCP frame (the port
// that is not 443) by delta within the ephemeral range, updating the TCP
// checksum incrementally (RFC 1624), so each copy of a recording holds
// connections of their own rather than replays of the same ones.
func movePort(b []byte, delta uint16) {
	if len(b) < 14+20 || b[12] != 0x08 || b[13] != 0x00 || b[23] != 6 {
		return
	}
	tcp := 14 + int(b[14]&0x0f)*4
	if len(b) < tcp+20 {
		return
	}
	at := tcp
	if binary.BigEndian.Uint16(b[tcp:]) == 443 {
		at = tcp + 2
	}
	old := binary.BigEndian.Uint16(b[at:])
	port := 1024 + uint16((uint32(old)-1024+uint32(delta))%(65536-1024))
	binary.BigEndian.PutUint16(b[at:], port)
	sum := uint32(^binary.BigEndian.Uint16(b[tcp+16:])) + uint32(^old) + uint32(port)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[tcp+16:], ^uint16(sum))
}
