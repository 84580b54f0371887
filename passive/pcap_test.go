package passive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// capPacket is a packet as a capture reader gave it.
type capPacket struct {
	data []byte
	ci   gopacket.CaptureInfo
	lt   LinkType
	// how the timestamp was made, by the own readers only: a pcap file's
	// nanoseconds per unit, a pcapng interface's if_tsresol
	unit    int64
	tsresol uint8
}

// capResult is what a capture reader made of a file.
type capResult struct {
	open error // the header could not be read
	pkts []capPacket
	end  error // what ended the reading
}

// readers holds a buffered reader for each side of a comparison, reused:
// allocating (and clearing) two of readBuffer's size per file would take
// most of a test's time.
type readers struct{ pcapgo, own *bufio.Reader }

func newReaders() *readers {
	return &readers{bufio.NewReaderSize(nil, readBuffer), bufio.NewReaderSize(nil, readBuffer)}
}

// readWithPcapgo reads b as Read did with pcapgo.
func readWithPcapgo(br *bufio.Reader, b []byte) capResult {
	br.Reset(bytes.NewReader(b))
	magic, err := br.Peek(4)
	if err != nil {
		return capResult{open: err}
	}
	var src interface {
		ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var linkType func(gopacket.CaptureInfo) LinkType
	if binary.LittleEndian.Uint32(magic) == blockSHB {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return capResult{open: err}
		}
		src = ng
		linkType = func(ci gopacket.CaptureInfo) LinkType {
			if iface, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return LinkType(iface.LinkType)
			}
			return LinkType(ng.LinkType())
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return capResult{open: err}
		}
		src = pr
		linkType = func(gopacket.CaptureInfo) LinkType { return LinkType(pr.LinkType()) }
	}
	var res capResult
	for {
		data, ci, err := src.ZeroCopyReadPacketData()
		if err != nil {
			res.end = err
			return res
		}
		ci.AncillaryData = nil
		res.pkts = append(res.pkts, capPacket{data: bytes.Clone(data), ci: ci, lt: linkType(ci)})
	}
}

// readOwn reads b as Read does.
func readOwn(br *bufio.Reader, b []byte) capResult {
	br.Reset(bytes.NewReader(b))
	r, err := openCapture(br)
	if err != nil {
		return capResult{open: err}
	}
	var res capResult
	for {
		data, ci, lt, err := r.readPacket()
		if err != nil {
			res.end = err
			return res
		}
		p := capPacket{data: bytes.Clone(data), ci: ci, lt: lt}
		switch r := r.(type) {
		case *pcapReader:
			p.unit = r.unit
		case *ngReader:
			p.tsresol = r.ifaces[ci.InterfaceIndex].tsresol
		}
		res.pkts = append(res.pkts, p)
	}
}

// ending classes an error that ended the reading as Read's feed does.
func ending(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "end"
	}
	return "error"
}

// compareReaders fails when the own readers and pcapgo's disagree on a
// file: on whether its header reads, on any packet (data, capture info,
// link type), or on how the reading ends. The differences allowed are
// where pcapgo is wrong, each said below.
func compareReaders(t *testing.T, rs *readers, b []byte) {
	t.Helper()
	want, got := readWithPcapgo(rs.pcapgo, b), readOwn(rs.own, b)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("capture %x:\n"+format, append([]any{b}, args...)...)
	}
	if (want.open == nil) != (got.open == nil) {
		fail("opening: pcapgo %v, own %v", want.open, got.open)
	}
	for i := range min(len(want.pkts), len(got.pkts)) {
		w, g := want.pkts[i], got.pkts[i]
		if !bytes.Equal(w.data, g.data) || w.ci.CaptureLength != g.ci.CaptureLength || w.ci.Length != g.ci.Length ||
			w.ci.InterfaceIndex != g.ci.InterfaceIndex || w.lt != g.lt {
			fail("packet %d: pcapgo %x %+v link type %d, own %x %+v link type %d", i, w.data, w.ci, w.lt, g.data, g.ci, g.lt)
		}
		if !sameTime(w.ci.Timestamp, g.ci.Timestamp, g) {
			fail("packet %d: pcapgo time %v, own %v", i, w.ci.Timestamp, g.ci.Timestamp)
		}
	}
	if len(want.pkts) != len(got.pkts) {
		fail("pcapgo read %d packets (then %v), own %d (then %v)", len(want.pkts), want.end, len(got.pkts), got.end)
	}
	if want.open != nil {
		return
	}
	w, g := ending(want.end), ending(got.end)
	var be *blockError
	switch {
	case w == g:
	// A length past its block's end: pcapgo reads on into the next blocks
	// and then skips to the end of the file (its count of the block's
	// bytes left wraps around), or stops at what it reads there. It gives
	// no packet more either way.
	case errors.As(got.end, &be):
	// pcapgo formats an end of file inside a name resolution block with
	// %v, so that it reads as an error rather than the end of a capture
	// cut short.
	case w == "error" && g == "end" && strings.HasSuffix(want.end.Error(), io.ErrUnexpectedEOF.Error()):
	default:
		fail("after %d packets: pcapgo %v, own %v", len(got.pkts), want.end, got.end)
	}
}

// sameTime reports whether the readers agree on a packet's time, or differ
// only where pcapgo's arithmetic is wrong.
func sameTime(w, g time.Time, p capPacket) bool {
	if w.Equal(g) && w.Location() == g.Location() {
		return true
	}
	d := g.Sub(w)
	switch exp := p.tsresol & 0x7f; {
	case p.unit == 1000:
		// pcap, microseconds: pcapgo multiplies the fraction by 1000 in
		// 32 bits, so a fraction of 4294968 µs or more (not a valid one)
		// wraps around.
		return d > 0 && d%(1<<32) == 0
	case p.tsresol&0x80 != 0 && exp >= 10:
		// 2^-n seconds: pcapgo scales ticks by an integer factor, 953
		// ns for 2^-20 instead of 953.67, 1 ns for 2^-30 instead of 0.93.
		return d > -time.Second && d < time.Second
	case p.tsresol&0x80 == 0 && exp >= 20:
		// 10^-n seconds beyond 64 bits: pcapgo's ticks per second wrap
		// around. A tick is then less than 10^-20 s, every timestamp
		// within a second of the offset.
		return true
	}
	return false
}

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// ng builds pcapng files in either byte order.
type ng struct {
	bo  byteOrder
	buf []byte
}

func (n *ng) u16(v uint16) []byte { return n.bo.AppendUint16(nil, v) }
func (n *ng) u32(v uint32) []byte { return n.bo.AppendUint32(nil, v) }

// block appends a block of type typ around body, padded to 4 bytes.
func (n *ng) block(typ uint32, body ...[]byte) *ng {
	b := bytes.Join(body, nil)
	b = append(b, make([]byte, -len(b)&3)...)
	total := uint32(12 + len(b))
	n.buf = append(n.buf, n.u32(typ)...)
	n.buf = append(n.buf, n.u32(total)...)
	n.buf = append(n.buf, b...)
	n.buf = append(n.buf, n.u32(total)...)
	return n
}

// opt is an option of code c with value v, padded; code 0 ends options.
func (n *ng) opt(c uint16, v []byte) []byte {
	b := append(n.u16(c), n.u16(uint16(len(v)))...)
	b = append(b, v...)
	return append(b, make([]byte, -len(b)&3)...)
}

func (n *ng) shb(major uint16, opts ...[]byte) *ng {
	body := [][]byte{n.u32(0x1a2b3c4d), n.u16(major), n.u16(0), bytes.Repeat([]byte{0xff}, 8)}
	return n.block(blockSHB, append(body, opts...)...)
}

func (n *ng) idb(lt uint16, snap uint32, opts ...[]byte) *ng {
	return n.block(blockIDB, append([][]byte{n.u16(lt), n.u16(0), n.u32(snap)}, opts...)...)
}

func (n *ng) epb(iface uint32, ts uint64, data []byte, orig uint32, opts ...[]byte) *ng {
	return n.block(blockEPB, append([][]byte{n.u32(iface), n.u32(uint32(ts >> 32)), n.u32(uint32(ts)),
		n.u32(uint32(len(data))), n.u32(orig), padded(data)}, opts...)...)
}

func padded(b []byte) []byte { return append(b[:len(b):len(b)], make([]byte, -len(b)&3)...) }

// pcapFile builds a pcap file: magic in byte order bo, records of data.
func pcapFile(bo byteOrder, magic, snap, lt uint32, recs ...[]byte) []byte {
	b := bo.AppendUint32(nil, magic)
	b = bo.AppendUint16(b, 2)
	b = bo.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = bo.AppendUint32(b, snap)
	b = bo.AppendUint32(b, lt)
	for i, r := range recs {
		b = bo.AppendUint32(b, 1700000000+uint32(i))
		b = bo.AppendUint32(b, 999999-uint32(i))
		b = bo.AppendUint32(b, uint32(len(r)))
		b = bo.AppendUint32(b, uint32(len(r)+i))
		b = append(b, r...)
	}
	return b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// captureSeeds are the recordings and hand-built files of every kind the
// readers meet.
func captureSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, c := range captures {
		out = append(out, readFixture(t, c.file))
	}
	v4 := eth(0x0800, ip4(6, tcpSeg(0x02, tcpOpts, nil)))
	v6 := ip6(6, tcpSeg(0x12, nil, []byte("hi")))
	le, be := binary.LittleEndian, binary.BigEndian
	out = append(out,
		pcapFile(le, 0xa1b2c3d4, 65535, 1, v4, v4[:20]),
		pcapFile(be, 0xa1b2c3d4, 65535, 1, v4, v4),
		pcapFile(le, 0xa1b23c4d, 65535, 276, v4),
		pcapFile(be, 0xa1b23c4d, 40, 0x1000_0065, v6, v4), // FCS bits above the link type; records past the snap length
		pcapFile(le, 0xa1b2c3d4, 65535, 1),
		pcapFile(le, 0xa1b2c3d5, 65535, 1, v4),
		gzipped(readFixture(t, "curl-plain-443.pcap")),
		gzipped(readFixture(t, "go-tls13-origin.pcapng")), // pcapgo never read gzipped pcapng; nor do we
		append(gzipped(readFixture(t, "curl-plain-443.pcap")), "trailing junk"...),
	)
	bad := gzipped(pcapFile(le, 0xa1b2c3d4, 65535, 1, v4, v4))
	bad[len(bad)-5] ^= 1 // checksum
	out = append(out, bad)

	out = append(out, ngSample(le), ngSample(be))
	// Sections in both byte orders in one file, and a record cut short.
	l, b := &ng{bo: le}, &ng{bo: be}
	l.shb(1).idb(1, 0).epb(0, 1, v4, uint32(len(v4)))
	b.shb(1).idb(229, 0).epb(0, 2, v6, uint32(len(v6)))
	out = append(out, append(append(l.buf, b.buf...), b.buf[:len(b.buf)-9]...))
	// Simple packets cut to the snap length; timestamp resolutions at and
	// beyond the edges; interfaces, options and byte orders that are wrong.
	n := &ng{bo: le}
	n.shb(1).idb(1, 40).block(blockSPB, n.u32(uint32(len(v4))), v4[:40]).block(blockSPB, n.u32(30), v4[:30])
	out = append(out, n.buf)
	for _, res := range []byte{0x3f, 0x40, 0xbf, 0xc0, 19, 20, 29, 0x8a, 0x9e} {
		n = &ng{bo: le}
		n.shb(1).idb(1, 0, n.opt(9, []byte{res}), n.opt(14, le.AppendUint64(nil, 1<<40))).epb(0, 0xfedcba9876543210, v4, 74)
		out = append(out, n.buf)
	}
	n = &ng{bo: le}
	n.shb(1).idb(1, 0).epb(1, 1, v4, 74)
	out = append(out, n.buf)
	n = &ng{bo: le}
	n.shb(1).idb(1, 0).epb(0, 1, v4, 74, n.opt(0, []byte{1}))
	out = append(out, n.buf)
	n = &ng{bo: le}
	n.shb(1).block(blockISB, n.u32(0), n.u32(0), n.u32(0))
	out = append(out, n.buf)
	n = &ng{bo: le}
	n.shb(1).idb(1, 0).epb(0, 1, v4, 74)
	out = append(out, bytes.Replace(n.buf, []byte{0x4d, 0x3c, 0x2b, 0x1a}, []byte{1, 2, 3, 4}, 1))
	out = append(out, pcapFile(le, 0xa1b2c3d4, 65535, 1, v4)[:24+4], // a fraction beyond a second
		append(pcapFile(le, 0xa1b2c3d4, 65535, 1)[:24], le.AppendUint32(le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 7), 4294968), 74), 74)...))
	out[len(out)-1] = append(out[len(out)-1], v4...)
	// A name resolution block without an end record, and a record too short
	// for its address.
	n = &ng{bo: le}
	n.shb(1).idb(1, 0).block(blockNRB, n.u16(1), n.u16(4), []byte{1, 2, 3, 4}).epb(0, 1, v4, uint32(len(v4)))
	n.block(blockNRB, n.u16(2), n.u16(4), []byte{1, 2, 3, 4}, n.u16(0), n.u16(0))
	out = append(out, n.buf)
	return out
}

// ngSample is a pcapng file with a bit of everything: three interfaces of
// different link types and resolutions, packets of each kind, blocks to
// skip, a section of an unknown version.
func ngSample(bo byteOrder) []byte {
	v4 := eth(0x0800, ip4(6, tcpSeg(0x02, tcpOpts, nil)))
	v6 := ip6(6, tcpSeg(0x12, nil, []byte("hi")))
	n := &ng{bo: bo}
	ns := n.opt(9, []byte{9})
	off := n.opt(14, bo.AppendUint64(nil, 1000))
	n.shb(1, n.opt(4, []byte("mitmwatch")), n.opt(0, nil)).
		idb(1, 65535, n.opt(2, []byte("eth0")), n.opt(0, nil)).
		idb(101, 128, ns, off, n.opt(0, nil)).
		idb(113, 0, n.opt(9, []byte{0x80 | 20})).
		epb(0, 1_700_000_000_123_456, v4, uint32(len(v4))).
		epb(1, 1_700_000_000_123_456_789, v6, 1000, n.opt(2, bo.AppendUint32(nil, 1)), n.opt(1, []byte("a comment")), n.opt(0, nil)).
		epb(2, 1<<40|1<<19, v4, uint32(len(v4))).
		block(blockSPB, n.u32(uint32(len(v4))), v4).
		block(blockOPB, n.u16(1), n.u16(0), n.u32(0), n.u32(77), n.u32(uint32(len(v6))), n.u32(uint32(len(v6))), padded(v6)).
		block(blockISB, n.u32(1), n.u32(0), n.u32(5), n.opt(2, bo.AppendUint64(nil, 9)), n.opt(0, nil)).
		block(blockNRB, n.u16(1), n.u16(13), []byte{192, 0, 2, 1, 'a', '.', 'e', 'x', 0, 0, 0, 0, 0, 0, 0, 0},
			n.u16(2), n.u16(20), make([]byte, 16), []byte("b.ex"), n.u16(0), n.u16(0)).
		block(0x0a, n.u32(0x544c534b), n.u32(4), []byte("keys")).
		block(0x0bad, []byte("custom")).
		shb(2, n.opt(0, nil)). // a version we skip, with its blocks
		idb(1, 0).
		epb(0, 5, v4, uint32(len(v4))).
		shb(1).
		idb(228, 0, n.opt(9, []byte{3})).
		epb(0, 5_001, v4[14:], 9999)
	return n.buf
}

// TestReadAsPcapgo holds the readers to pcapgo's on the recordings and the
// hand-built files, cut anywhere, and random corruptions of them.
func TestReadAsPcapgo(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rs := newReaders()
	for _, s := range captureSeeds(t) {
		for n := range len(s) + 1 {
			if n < 512 || len(s)-n < 64 || rng.IntN(8) == 0 {
				compareReaders(t, rs, s[:n])
			}
		}
		b := make([]byte, len(s))
		for range 200 {
			copy(b, s)
			for range 1 + rng.IntN(4) {
				b[rng.IntN(len(b))] = byte(rng.Uint32())
			}
			compareReaders(t, rs, b)
		}
	}
}

// TestReadLongPackets compares the readers on packets longer than the
// read buffer, which take the path that grows a buffer as bytes arrive.
func TestReadLongPackets(t *testing.T) {
	long := make([]byte, 300_000)
	for i := range long {
		long[i] = byte(i * 7)
	}
	le := binary.LittleEndian
	n := &ng{bo: le}
	n.shb(1).idb(1, 0).epb(0, 1, long, uint32(len(long))).epb(0, 2, long[:1000], 1000)
	rs := newReaders()
	for _, b := range [][]byte{
		pcapFile(le, 0xa1b2c3d4, 1<<20, 1, long, long[:100]),
		pcapFile(le, 0xa1b2c3d4, 1<<20, 1, long)[:200_000],
		pcapFile(le, 0xa1b2c3d4, 65535, 1, long), // beyond the snap length and libpcap's maximum
		n.buf,
		n.buf[:250_000],
	} {
		compareReaders(t, rs, b)
	}
	if res := readOwn(rs.own, n.buf); len(res.pkts) != 2 || !bytes.Equal(res.pkts[0].data, long) {
		t.Errorf("pcapng: %d packets, then %v", len(res.pkts), res.end)
	}
}

// TestReadKnownFiles checks what the readers make of hand-built files, so
// that a change to both them and pcapgo could not go unseen.
func TestReadKnownFiles(t *testing.T) {
	res := readOwn(bufio.NewReaderSize(nil, readBuffer), ngSample(binary.LittleEndian))
	var got []string
	for _, p := range res.pkts {
		got = append(got, fmt.Sprintf("%d/%d %d %s", p.ci.CaptureLength, p.ci.Length, p.lt, p.ci.Timestamp.Format(time.RFC3339Nano)))
	}
	want := []string{
		"74/74 1 2023-11-14T22:13:20.123456Z",
		"62/1000 101 2023-11-14T22:30:00.123456789Z", // if_tsresol 10^-9, if_tsoffset 1000 s
		"74/74 113 1970-01-13T03:16:16.5Z",           // 2^-20 s: 2^40+2^19 ticks
		"74/74 1 0001-01-01T00:00:00Z",               // simple packet: no time
		"62/62 101 1970-01-01T00:16:40.000000077Z",   // obsolete packet block
		"60/9999 228 1970-01-01T00:00:05.001Z",       // the section after the skipped one
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || ending(res.end) != "end" {
		t.Errorf("read\n%s\nthen %v, want\n%s", strings.Join(got, "\n"), res.end, strings.Join(want, "\n"))
	}
}

// TestReadHostileLengths: lengths in a file are trusted only as far as
// bytes arrive, so a short file cannot make a reader allocate much.
func TestReadHostileLengths(t *testing.T) {
	le := binary.LittleEndian
	p := pcapFile(le, 0xa1b2c3d4, 0xffffffff, 1)
	for _, v := range []uint32{0, 0, 0xfffffff0, 0xfffffff0} { // time, captured and original length
		p = le.AppendUint32(p, v)
	}
	p = append(p, make([]byte, 1000)...)
	n := &ng{bo: le}
	n.shb(1).idb(1, 0)
	n.buf = append(n.buf, n.u32(blockEPB)...)
	n.buf = append(n.buf, n.u32(0xfffffff0)...)
	n.buf = append(n.buf, make([]byte, 12)...)
	n.buf = append(n.buf, n.u32(0xffffff00)...)
	n.buf = append(n.buf, make([]byte, 1004)...)
	br := bufio.NewReaderSize(nil, readBuffer)
	for name, b := range map[string][]byte{"pcap": p, "pcapng": n.buf} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res := readOwn(br, b)
		runtime.ReadMemStats(&after)
		if ending(res.end) != "end" || len(res.pkts) != 0 {
			t.Errorf("%s: %d packets, then %v; want none, then the end", name, len(res.pkts), res.end)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("%s: allocated %d bytes for a file of %d", name, alloc, len(b))
		}
	}
}

// TestReadManyInterfaces: a section that describes more interfaces than
// any capture does is refused with an error that says so, once past the
// bound, not read into memory without end.
func TestReadManyInterfaces(t *testing.T) {
	n := &ng{bo: binary.LittleEndian}
	n.shb(1)
	for range maxIfaces + 1 {
		n.idb(1, 0)
	}
	res := readOwn(bufio.NewReaderSize(nil, readBuffer), n.buf)
	if res.end == nil || !strings.Contains(res.end.Error(), "more than 65536 interfaces") {
		t.Errorf("%d interfaces: %v; want the bound's error", maxIfaces+1, res.end)
	}
	n = &ng{bo: binary.LittleEndian}
	n.shb(1)
	for range maxIfaces {
		n.idb(1, 0)
	}
	if res := readOwn(bufio.NewReaderSize(nil, readBuffer), n.buf); ending(res.end) != "end" {
		t.Errorf("%d interfaces: %v; want the end", maxIfaces, res.end)
	}
}

// FuzzReadCapture holds the pcap and pcapng readers to pcapgo's, set up as
// Read had them.
func FuzzReadCapture(f *testing.F) {
	for _, s := range captureSeeds(f) {
		f.Add(s)
	}
	rs := newReaders()
	f.Fuzz(func(t *testing.T, b []byte) {
		compareReaders(t, rs, b)
	})
}
