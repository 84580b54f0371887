package passive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"
)

// packet is a captured packet held in memory.
type packet struct {
	data []byte
	ci   gopacket.CaptureInfo
	lt   LinkType
}

// loadPackets reads every packet of a capture file.
func loadPackets(t testing.TB, path string) []packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var lt LinkType
	if filepath.Ext(path) == ".pcapng" {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		src, lt = r, LinkType(r.LinkType())
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		src, lt = r, LinkType(r.LinkType())
	}
	var out []packet
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, packet{data, ci, lt})
	}
}

// summary is what must not change however a connection's segments arrive.
func summary(c *Conn) string {
	fp := FingerprintsOf(c.Hello, c.ServerHello)
	var version uint16
	if c.ServerHello != nil {
		version = c.ServerHello.Version()
	}
	return fmt.Sprintf("%s %s %s %x %d %s %s %v", hostOf(c), fp.JA4R, fp.JA3SStr, chainSum(c.Certificates), version, c.End, c.Proxy, c.Plain != nil)
}

func hostOf(c *Conn) string { h, _ := hostPort(c); return h }

func conns(pkts []packet) []string {
	var out []string
	tr := NewTracker(Options{AnyPort: true}, func(c *Conn) { out = append(out, summary(c)) })
	for _, p := range pkts {
		tr.Packet(p.data, p.ci, p.lt)
	}
	tr.Flush()
	return out
}

// resegment rebuilds a real capture as Ethernet frames whose TCP payloads
// are cut into small segments, some delivered out of order, some twice,
// some overlapping their neighbours — what a real path does to a
// handshake, applied to real handshake bytes.
func resegment(t *testing.T, pkts []packet, rng *rand.Rand) []packet {
	t.Helper()
	var out []packet
	for _, p := range pkts {
		pkt := gopacket.NewPacket(p.data, layers.LinkType(p.lt).LayerType(), gopacket.Default)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		net := pkt.NetworkLayer()
		if tcp == nil || net == nil {
			out = append(out, p)
			continue
		}
		if len(tcp.Payload) < 2 {
			out = append(out, frame(t, net, tcp, tcp.Seq, tcp.Payload, p.ci))
			continue
		}
		var pieces []packet
		payload := tcp.Payload
		for off := 0; off < len(payload); {
			n := min(1+rng.IntN(40), len(payload)-off)
			pieces = append(pieces, frame(t, net, tcp, tcp.Seq+uint32(off), payload[off:off+n], p.ci))
			if rng.IntN(4) == 0 { // an overlapping retransmission of this and the next bytes
				end := min(off+n+rng.IntN(20), len(payload))
				pieces = append(pieces, frame(t, net, tcp, tcp.Seq+uint32(off), payload[off:end], p.ci))
			}
			off += n
		}
		for i := 0; i+1 < len(pieces); i++ { // swap neighbours: out of order
			if rng.IntN(3) == 0 {
				pieces[i], pieces[i+1] = pieces[i+1], pieces[i]
				i++
			}
		}
		out = append(out, pieces...)
	}
	return out
}

// frame serialises one TCP segment as an Ethernet frame.
func frame(t *testing.T, network gopacket.NetworkLayer, tcp *layers.TCP, seq uint32, payload []byte, ci gopacket.CaptureInfo) packet {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6)}
	seg := *tcp
	seg.Seq = seq
	var ipLayer gopacket.SerializableLayer
	switch ip := network.(type) {
	case *layers.IPv4:
		c := *ip
		c.Options, c.Padding = nil, nil
		eth.EthernetType, ipLayer = layers.EthernetTypeIPv4, &c
		seg.SetNetworkLayerForChecksum(&c)
	case *layers.IPv6:
		c := *ip
		eth.EthernetType, ipLayer = layers.EthernetTypeIPv6, &c
		seg.SetNetworkLayerForChecksum(&c)
	default:
		t.Fatalf("network layer %T", network)
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ipLayer, &seg, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(buf.Bytes())
	ci.CaptureLength, ci.Length = len(data), len(data)
	return packet{data, ci, LinkTypeEthernet}
}

// TestResegmented cuts the segments of every recording into pieces,
// reorders and repeats them, and expects the same connections back.
func TestResegmented(t *testing.T) {
	t.Parallel()
	for _, c := range captures {
		pkts := loadPackets(t, filepath.Join("testdata", c.file))
		want := conns(pkts)
		if len(want) != 1 {
			t.Fatalf("%s: %d connections in the recording", c.file, len(want))
		}
		for seed := range uint64(20) {
			got := conns(resegment(t, pkts, rand.New(rand.NewPCG(seed, 1))))
			if len(got) != 1 || got[0] != want[0] {
				t.Fatalf("%s seed %d:\n got %q\nwant %q", c.file, seed, got, want)
			}
		}
	}
}

// TestSnapped reads a recording cut to a snap length too short for the
// handshake: the connection is reported as truncated, never misread.
func TestSnapped(t *testing.T) {
	t.Parallel()
	pkts := loadPackets(t, filepath.Join("testdata", "curl-tls12-origin.pcap"))
	var got []*Conn
	tr := NewTracker(Options{AnyPort: true}, func(c *Conn) { cc := *c; got = append(got, &cc) })
	for _, p := range pkts {
		ci := p.ci
		data := p.data[:min(len(p.data), 200)]
		ci.CaptureLength = len(data)
		tr.Packet(data, ci, p.lt)
	}
	tr.Flush()
	if len(got) != 1 || got[0].End != EndTruncated || len(got[0].Certificates) != 0 {
		t.Fatalf("got %d conns: %+v", len(got), *got[0])
	}
	if tr.Stats().Snapped == 0 {
		t.Error("no snapped packet counted")
	}
}

// TestReadTruncatedFile reads a capture file cut mid-packet, as one still
// being written is.
func TestReadTruncatedFile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "curl-tls12-origin.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{24, 40, len(b) / 2, len(b) - 3} {
		tr := NewTracker(Options{AnyPort: true}, nil)
		if err := Read(context.Background(), bytes.NewReader(b[:n]), tr); err != nil {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
	if err := Read(context.Background(), bytes.NewReader([]byte("not a capture at all")), NewTracker(Options{}, nil)); err == nil {
		t.Error("garbage read as a capture")
	}
}

// TestFilter runs the kernel filter in x/net/bpf's VM over real packets:
// the handshake-only filter keeps every packet the tracker needs for the
// recordings, and drops the rest of each connection.
func TestFilter(t *testing.T) {
	t.Parallel()
	m := readManifest(t)
	for _, c := range captures {
		pkts := loadPackets(t, filepath.Join("testdata", c.file))
		if pkts[0].lt != LinkTypeEthernet {
			continue // the filter is for Ethernet framing; tcpdump -i any writes SLL2
		}
		port := m[c.file][0]
		for _, hsOnly := range []bool{false, true} {
			prog, err := Filter([]uint16{port}, hsOnly, false)
			if err != nil {
				t.Fatal(err)
			}
			ins, _ := bpf.Disassemble(prog)
			vm, err := bpf.NewVM(ins)
			if err != nil {
				t.Fatal(err)
			}
			var kept []packet
			for _, p := range pkts {
				n, err := vm.Run(p.data)
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					kept = append(kept, p)
				}
			}
			if !hsOnly && len(kept) != len(pkts) {
				t.Errorf("%s: port filter kept %d of %d", c.file, len(kept), len(pkts))
			}
			if got, want := conns(kept), conns(pkts); len(got) != 1 || got[0] != want[0] {
				t.Errorf("%s (handshake only %t): filtered capture gives %q, want %q", c.file, hsOnly, got, want)
			}
			other, _ := Filter([]uint16{port + 1}, hsOnly, false)
			ins, _ = bpf.Disassemble(other)
			vm, _ = bpf.NewVM(ins)
			for _, p := range pkts {
				if n, _ := vm.Run(p.data); n > 0 {
					t.Errorf("%s: filter for another port kept a packet", c.file)
					break
				}
			}
		}
	}
}
