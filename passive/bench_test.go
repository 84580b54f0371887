package passive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mitmwatch/mitmwatch/detector"
)

// fixturePackets are the packets of every recording.
func fixturePackets(t testing.TB) []packet {
	var all []packet
	for _, c := range captures {
		all = append(all, loadPackets(t, filepath.Join("testdata", c.file))...)
	}
	return all
}

// untracked returns the packets that go to no tracked handshake: those
// after each handshake (ACKs, application data, FINs), as seen by a tracker
// that has followed the whole capture.
func untracked(t testing.TB, pkts []packet) []packet {
	tr := NewTracker(Options{AnyPort: true}, nil)
	var out []packet
	for _, p := range pkts {
		before := tr.Stats().Handshake
		tr.Packet(p.data, p.ci, p.lt)
		if tr.Stats().Handshake == before && tr.Stats().TCP > 0 {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no untracked packets")
	}
	return out
}

// TestHotPathAllocations holds the promise of the hot path: a packet that
// belongs to no tracked handshake — on a watched port or not — costs no
// heap allocation.
func TestHotPathAllocations(t *testing.T) {
	pkts := fixturePackets(t)
	for name, c := range map[string]struct {
		opts Options
		pkts []packet
	}{
		"watched port, after the handshake": {Options{AnyPort: true}, untracked(t, pkts)},
		"other ports":                       {Options{Ports: []uint16{443}}, pkts},
	} {
		tr := NewTracker(c.opts, nil)
		allocs := testing.AllocsPerRun(20, func() {
			for _, p := range c.pkts {
				tr.Packet(p.data, p.ci, p.lt)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per run of %d packets", name, allocs, len(c.pkts))
		}
	}
}

func reportRate(b *testing.B, packets int) {
	b.ReportMetric(float64(packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets*b.N), "ns/packet")
}

// BenchmarkHotPath decodes packets that belong to no tracked handshake.
func BenchmarkHotPath(b *testing.B) {
	pkts := untracked(b, fixturePackets(b))
	tr := NewTracker(Options{AnyPort: true}, nil)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range pkts {
			tr.Packet(p.data, p.ci, p.lt)
		}
	}
	reportRate(b, len(pkts))
}

// BenchmarkRecordings reads every recording from memory, handshakes
// included: pcap and pcapng parsing, decoding, reassembly, TLS parsing.
func BenchmarkRecordings(b *testing.B) {
	var files [][]byte
	n := 0
	for _, c := range captures {
		files = append(files, readFixture(b, c.file))
		n += len(loadPackets(b, filepath.Join("testdata", c.file)))
	}
	b.ReportAllocs()
	for b.Loop() {
		tr := NewTracker(Options{AnyPort: true}, func(*Conn) {})
		for _, f := range files {
			if err := Read(context.Background(), bytes.NewReader(f), tr); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRate(b, n)
}

// BenchmarkAnalysis judges the recordings' connections: fingerprints,
// grouping, chain verification, detector.Judge.
func BenchmarkAnalysis(b *testing.B) {
	r := readRoots(b)
	var conns []Conn
	tr := NewTracker(Options{AnyPort: true}, func(c *Conn) { conns = append(conns, *c) })
	for _, p := range fixturePackets(b) {
		tr.Packet(p.data, p.ci, p.lt)
	}
	tr.Flush()
	b.ReportAllocs()
	for b.Loop() {
		a := &Analysis{PublicRoots: r.public, SystemRoots: r.system}
		for i := range conns {
			a.Add(&conns[i])
		}
		judge(a, detector.Policy{})
	}
}

func readFixture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
