package passive

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// gopacketDecoder decodes as the Tracker did before it had a decoder of its
// own: gopacket's DecodingLayerParser over preallocated layers, starting
// from the link type's first layer, unsupported layers ignored. It is the
// reference the decoder is held to.
type gopacketDecoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	loop    layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

func newGopacketDecoder() *gopacketDecoder {
	g := &gopacketDecoder{decoded: make([]gopacket.LayerType, 0, 8)}
	all := []gopacket.DecodingLayer{&g.eth, &g.dot1q, &g.sll, &g.sll2, &g.loop, &g.ip4, &g.ip6, &g.tcp}
	g.parsers = make(map[gopacket.LayerType]*gopacket.DecodingLayerParser)
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL,
		layers.LayerTypeLinuxSLL2, layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6} {
		p := gopacket.NewDecodingLayerParser(first, all...)
		p.IgnoreUnsupported = true
		g.parsers[first] = p
	}
	return g
}

func (g *gopacketDecoder) firstLayer(lt layers.LinkType, data []byte) gopacket.LayerType {
	switch lt {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14:
		if len(data) > 0 && data[0]>>4 == 6 {
			return layers.LayerTypeIPv6
		}
		return layers.LayerTypeIPv4
	}
	return gopacket.LayerTypeZero
}

// outcome is what decoding a packet told the Tracker.
type outcome struct {
	OK       bool
	Layers   []string // as far as the decoder's trail reaches
	N        int      // layers decoded
	Net      string   // the innermost IP header
	Src, Dst [16]byte
	TTL      uint8
	Frag     uint16 // IPv4 flags and fragment offset
	TCP      bool
	SrcPort  uint16
	DstPort  uint16
	Seq      uint32
	Flags    uint8
	Payload  []byte
}

func (g *gopacketDecoder) decode(data []byte, lt LinkType) outcome {
	p := g.parsers[g.firstLayer(layers.LinkType(lt), data)]
	if p == nil || p.DecodeLayers(data, &g.decoded) != nil {
		return outcome{}
	}
	o := outcome{OK: true, N: len(g.decoded)}
	for i, l := range g.decoded {
		if i < len(decoder{}.trail) {
			o.Layers = append(o.Layers, l.String())
		}
		switch l {
		case layers.LayerTypeIPv4:
			o.Net, o.TTL = "IPv4", g.ip4.TTL
			o.Frag = uint16(g.ip4.Flags)<<13 | g.ip4.FragOffset
			o.Src = [16]byte(append(make([]byte, 10, 16), append([]byte{0xff, 0xff}, g.ip4.SrcIP...)...))
			o.Dst = [16]byte(append(make([]byte, 10, 16), append([]byte{0xff, 0xff}, g.ip4.DstIP...)...))
		case layers.LayerTypeIPv6:
			o.Net, o.TTL, o.Frag = "IPv6", g.ip6.HopLimit, 0
			o.Src, o.Dst = [16]byte(g.ip6.SrcIP), [16]byte(g.ip6.DstIP)
		case layers.LayerTypeTCP:
			t := &g.tcp
			o.TCP, o.SrcPort, o.DstPort, o.Seq, o.Payload = true, uint16(t.SrcPort), uint16(t.DstPort), t.Seq, t.Payload
			for i, set := range []bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR} {
				if set {
					o.Flags |= 1 << i
				}
			}
		}
	}
	return o
}

func ownDecode(d *decoder, data []byte, lt LinkType) outcome {
	if !d.decode(data, lt) {
		return outcome{}
	}
	o := outcome{OK: true, N: d.n}
	for _, l := range d.trail[:min(d.n, len(d.trail))] {
		o.Layers = append(o.Layers, l.String())
	}
	if d.ip != layerNone {
		o.Net, o.Src, o.Dst, o.TTL = d.ip.String(), d.src, d.dst, d.ttl
		if d.ip == layerIPv4 {
			o.Frag = d.frag
		}
	}
	if d.tcp {
		o.TCP, o.SrcPort, o.DstPort, o.Seq, o.Flags, o.Payload = true, d.srcPort, d.dstPort, d.seq, d.flags, d.payload
	}
	return o
}

// compareDecoders fails when the decoder and gopacket disagree on data.
func compareDecoders(t *testing.T, g *gopacketDecoder, d *decoder, data []byte, lt LinkType) {
	t.Helper()
	want, got := g.decode(data, lt), ownDecode(d, data, lt)
	if reflect.DeepEqual(want, got) {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("link type %d, packet %x: decoder differs from gopacket (-gopacket +decoder):\n%s", lt, data, diff)
	}
}

// decodeCases are packets that reach every branch of the decoder.
func decodeCases() []struct {
	name string
	lt   LinkType
	data []byte
} {
	syn := tcpSeg(0x02, tcpOpts, nil)
	data := tcpSeg(0x18, nil, []byte("\x16\x03\x01\x00\x05hello"))
	v4 := ip4(6, data)
	v6 := ip6(6, data)
	sll := func(proto uint16, addrLen uint16, p []byte) []byte {
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[2:], 1)
		binary.BigEndian.PutUint16(h[4:], addrLen)
		binary.BigEndian.PutUint16(h[14:], proto)
		return append(h, p...)
	}
	sll2 := func(proto, arphrd uint16, addrLen uint8, p []byte) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h, proto)
		binary.BigEndian.PutUint16(h[8:], arphrd)
		h[11] = addrLen
		return append(h, p...)
	}
	loop := func(family []byte, p []byte) []byte { return append(append([]byte{}, family...), p...) }
	hbh := func(next uint8, opts []byte) []byte { // opts padded to 8n+6 by the caller
		return append([]byte{next, uint8((len(opts)+2)/8 - 1)}, opts...)
	}
	jumbo := func(n uint32) []byte {
		return []byte{0xc2, 4, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	ip6Len := func(h []byte, n uint16) []byte { binary.BigEndian.PutUint16(h[4:], n); return h }
	ip4Set := func(h []byte, at int, v ...byte) []byte { copy(h[at:], v); return h }
	return []struct {
		name string
		lt   LinkType
		data []byte
	}{
		{"ethernet ipv4 syn", LinkTypeEthernet, eth(0x0800, ip4(6, syn))},
		{"ethernet ipv4 data", LinkTypeEthernet, eth(0x0800, v4)},
		{"ethernet ipv6", LinkTypeEthernet, eth(0x86dd, v6)},
		{"ethernet ipv4 padded to 60", LinkTypeEthernet, append(eth(0x0800, ip4(6, tcpSeg(0x10, nil, nil))), make([]byte, 6)...)},
		{"ethernet 802.3 length", LinkTypeEthernet, eth(0x0040, v4)},
		{"ethernet raw-IP mark", LinkTypeEthernet, eth(0xffff, v4)},
		{"ethernet arp", LinkTypeEthernet, eth(0x0806, make([]byte, 28))},
		{"vlan", LinkTypeEthernet, eth(0x8100, tag(0x0800, v4))},
		{"vlan 802.3 length", LinkTypeEthernet, eth(0x8100, tag(0x0010, v4))},
		{"qinq", LinkTypeEthernet, eth(0x88a8, tag(0x8100, tag(0x86dd, v6)))},
		{"bridged ethernet", LinkTypeEthernet, eth(0x6558, eth(0x0800, v4))},
		{"sll", LinkTypeLinuxSLL, sll(0x0800, 6, v4)},
		{"sll llc", LinkTypeLinuxSLL, sll(0x0004, 6, v4)},
		{"sll long address", LinkTypeLinuxSLL, sll(0x0800, 9, v4)},
		{"sll vlan", LinkTypeLinuxSLL, sll(0x8100, 6, tag(0x0800, v4))},
		{"sll2", LinkTypeLinuxSLL2, sll2(0x86dd, 1, 6, v6)},
		{"sll2 ipgre", LinkTypeLinuxSLL2, sll2(0x0800, 778, 6, eth(0x0800, v4))},
		{"sll2 frad", LinkTypeLinuxSLL2, sll2(0x0800, 770, 6, v4)},
		{"sll2 radiotap", LinkTypeLinuxSLL2, sll2(0x0800, 803, 6, v4)},
		{"sll2 llc", LinkTypeLinuxSLL2, sll2(0x0004, 1, 6, v4)},
		{"sll2 long address", LinkTypeLinuxSLL2, sll2(0x0800, 1, 9, v4)},
		{"null little-endian", LinkTypeNull, loop([]byte{2, 0, 0, 0}, v4)},
		{"null big-endian", LinkTypeNull, loop([]byte{0, 0, 0, 2}, v4)},
		{"null ipv6 linux", LinkTypeNull, loop([]byte{10, 0, 0, 0}, v6)},
		{"null ipv6 bsd", LinkTypeNull, loop([]byte{24, 0, 0, 0}, v6)},
		{"null ipv6 freebsd", LinkTypeNull, loop([]byte{0, 0, 0, 28}, v6)},
		{"null ipv6 darwin", LinkTypeNull, loop([]byte{30, 0, 0, 0}, v6)},
		{"null family 256", LinkTypeNull, loop([]byte{0, 0, 1, 0}, v4)},
		{"null family 256 little-endian", LinkTypeNull, loop([]byte{0, 1, 0, 0}, v4)},
		{"null unknown family", LinkTypeNull, loop([]byte{7, 0, 0, 0}, v4)},
		{"loop", LinkTypeLoop, loop([]byte{0, 0, 0, 2}, v4)},
		{"raw ipv4", LinkTypeRaw, v4},
		{"raw ipv6", LinkTypeRaw, v6},
		{"linktype ipv4 holding ipv6", LinkTypeIPv4, v6},
		{"linktype ipv6 holding ipv4", LinkTypeIPv6, v4},
		{"raw bsd 12", 12, v4},
		{"raw bsd 14", 14, v6},
		{"unknown link type", 147, v4},
		{"ipv4 options", LinkTypeRaw, ip4Opts(6, []byte{1, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0}, data)},
		{"ipv4 options end", LinkTypeRaw, ip4Opts(6, []byte{1, 0, 0xff, 0xff}, data)},
		{"ipv4 option length 1", LinkTypeRaw, ip4Opts(6, []byte{7, 1, 0, 0}, data)},
		{"ipv4 option beyond header", LinkTypeRaw, ip4Opts(6, []byte{1, 7, 9, 0}, data)},
		{"ipv4 option lone type", LinkTypeRaw, ip4Opts(6, []byte{1, 1, 1, 7}, data)},
		{"ipv4 total length 0", LinkTypeRaw, ip4Set(ip4(6, data), 2, 0, 0)},
		{"ipv4 total length short", LinkTypeRaw, ip4Set(ip4(6, data), 2, 0, 30)},
		{"ipv4 total length 19", LinkTypeRaw, ip4Set(ip4(6, data), 2, 0, 19)},
		{"ipv4 total length beyond", LinkTypeRaw, ip4Set(ip4(6, data), 2, 0xff, 0)},
		{"ipv4 header length 4", LinkTypeRaw, ip4Set(ip4(6, data), 0, 0x44)},
		{"ipv4 header beyond total", LinkTypeRaw, ip4Set(ip4(6, data), 0, 0x4f, 0, 0, 40)},
		{"ipv4 header beyond capture", LinkTypeRaw, ip4Set(ip4(6, nil), 0, 0x46, 0, 0, 60)},
		{"ipv4 version 6 in ethernet", LinkTypeEthernet, eth(0x0800, ip4Set(ip4(6, data), 0, 0x65))},
		{"ipv4 more fragments", LinkTypeRaw, ip4Set(ip4(6, data), 6, 0x20, 0)},
		{"ipv4 fragment offset", LinkTypeRaw, ip4Set(ip4(6, data), 6, 0x00, 0x10)},
		{"ipv4 don't fragment", LinkTypeRaw, ip4Set(ip4(6, data), 6, 0x40, 0)},
		{"ipv4 reserved flag", LinkTypeRaw, ip4Set(ip4(6, data), 6, 0x80, 0)},
		{"ip in ip", LinkTypeRaw, ip4(4, v4)},
		{"ip in ip 94", LinkTypeRaw, ip4(94, v4)},
		{"ip in ip, inner fragment", LinkTypeRaw, ip4(4, ip4Set(ip4(6, data), 6, 0x20, 0))},
		{"ip in ip, outer fragment", LinkTypeRaw, ip4Set(ip4(4, v4), 6, 0x20, 0)},
		{"6in4", LinkTypeRaw, ip4(41, v6)},
		{"4in6", LinkTypeRaw, ip6(4, v4)},
		{"6in6", LinkTypeRaw, ip6(41, v6)},
		{"ipv4 extension header number", LinkTypeRaw, ip4(0, hbh(6, []byte{1, 4, 0, 0, 0, 0}))},
		{"ipv4 udp", LinkTypeRaw, ip4(17, make([]byte, 8))},
		{"ipv6 payload length short", LinkTypeRaw, ip6Len(ip6(6, data), 25)},
		{"ipv6 payload length beyond", LinkTypeRaw, ip6Len(ip6(6, data), 2000)},
		{"ipv6 payload length 0", LinkTypeRaw, ip6Len(ip6(6, data), 0)},
		{"ipv6 hop-by-hop", LinkTypeRaw, ip6(0, append(hbh(6, []byte{1, 4, 0, 0, 0, 0}), data...))},
		{"ipv6 hop-by-hop pad1", LinkTypeRaw, ip6(0, append(hbh(6, []byte{0, 0, 0, 0, 0, 0}), data...))},
		{"ipv6 hop-by-hop to ipv4", LinkTypeRaw, ip6(0, append(hbh(4, []byte{1, 4, 0, 0, 0, 0}), v4...))},
		{"ipv6 hop-by-hop twice", LinkTypeRaw, ip6(0, append(hbh(0, []byte{1, 4, 0, 0, 0, 0}), hbh(6, []byte{1, 4, 0, 0, 0, 0})...))},
		{"ipv6 hop-by-hop bad option", LinkTypeRaw, ip6(0, append(hbh(6, []byte{5, 9, 0, 0, 0, 0}), data...))},
		{"ipv6 hop-by-hop beyond", LinkTypeRaw, ip6(0, []byte{6, 3, 1, 0})},
		{"ipv6 jumbo", LinkTypeRaw, ip6Len(ip6(0, append(hbh(6, jumbo(70000)), data...)), 0)},
		{"ipv6 jumbo short", LinkTypeRaw, ip6Len(ip6(0, append(hbh(6, jumbo(70000)), data...)), 0)[:50]},
		{"ipv6 jumbo 65535", LinkTypeRaw, ip6Len(ip6(0, append(hbh(6, jumbo(65535)), data...)), 0)},
		{"ipv6 jumbo with length", LinkTypeRaw, ip6(0, append(hbh(6, jumbo(70000)), data...))},
		{"ipv6 two jumbo options", LinkTypeRaw, ip6Len(ip6(0, append(hbh(6, append(jumbo(70000), []byte{0xc2, 3, 1, 1, 1, 1, 0, 0}...)), data...)), 0)},
		{"ipv6 jumbo 3 bytes", LinkTypeRaw, ip6Len(ip6(0, append(hbh(6, []byte{0xc2, 3, 1, 1, 1, 0}), data...)), 0)},
		{"ipv6 hop-by-hop, length 0, no jumbo", LinkTypeRaw, ip6Len(ip6(0, append(hbh(6, []byte{1, 4, 0, 0, 0, 0}), data...)), 0)},
		{"ipv6 routing header", LinkTypeRaw, ip6(43, append([]byte{6, 0, 0, 0, 0, 0, 0, 0}, data...))},
		{"ipv6 fragment header", LinkTypeRaw, ip6(44, append([]byte{6, 0, 0, 1, 0, 0, 0, 0}, data...))},
		{"tcp data offset 4", LinkTypeRaw, ip4(6, tcpSetOff(tcpSeg(0x10, nil, data), 4))},
		{"tcp data offset beyond", LinkTypeRaw, ip4(6, tcpSetOff(tcpSeg(0x10, nil, nil), 15))},
		{"tcp all flags", LinkTypeRaw, ip4(6, tcpSeg(0xff, nil, []byte("x")))},
		{"tcp short", LinkTypeRaw, ip4(6, make([]byte, 19))},
		{"tcp bad options", LinkTypeRaw, ip4(6, tcpSeg(0x02, []byte{2, 1, 5, 0, 3, 9, 0, 0}, nil))},
		{"tcp mptcp options", LinkTypeRaw, ip4(6, tcpSeg(0x02, mptcpOpts, []byte("payload")))},
		{"tcp sack beyond", LinkTypeRaw, ip4(6, tcpSeg(0x10, []byte{1, 1, 5, 18, 0, 0, 0, 0}, []byte("payload")))},
	}
}

// tcpOpts are a Linux SYN's options: MSS, SACK permitted, timestamps,
// window scale.
var tcpOpts = []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}

// mptcpOpts are multipath TCP options of each subtype, some malformed.
var mptcpOpts = []byte{
	30, 12, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, // MP_CAPABLE with a key
	30, 8, 0x20, 0x01, 1, 2, 3, 4, // DSS: data ACK
	30, 4, 0x30, 1, // ADD_ADDR, short
	30, 3, 0x40, // REMOVE_ADDR
	30, 2, // too short
}

func eth(etype uint16, p []byte) []byte {
	h := make([]byte, 14, 14+len(p))
	h[0], h[6] = 2, 4
	binary.BigEndian.PutUint16(h[12:], etype)
	return append(h, p...)
}

func tag(etype uint16, p []byte) []byte {
	h := []byte{0x20, 7, 0, 0}
	binary.BigEndian.PutUint16(h[2:], etype)
	return append(h, p...)
}

func ip4(proto uint8, p []byte) []byte { return ip4Opts(proto, nil, p) }

func ip4Opts(proto uint8, opts, p []byte) []byte {
	hl := 20 + len(opts)
	h := make([]byte, 20, hl+len(p))
	h[0] = 0x40 | uint8(hl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(hl+len(p)))
	h[8], h[9] = 64, proto
	copy(h[12:], []byte{192, 0, 2, 1, 198, 51, 100, 7})
	return append(append(h, opts...), p...)
}

func ip6(next uint8, p []byte) []byte {
	h := make([]byte, 40, 40+len(p))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(p)))
	h[6], h[7] = next, 57
	h[8], h[9], h[23] = 0x20, 0x01, 1
	h[24], h[25], h[39] = 0x20, 0x01, 2
	return append(h, p...)
}

func tcpSeg(flags uint8, opts, p []byte) []byte {
	hl := 20 + (len(opts)+3)&^3
	h := make([]byte, hl, hl+len(p))
	binary.BigEndian.PutUint16(h, 50123)
	binary.BigEndian.PutUint16(h[2:], 443)
	binary.BigEndian.PutUint32(h[4:], 0xfffffff0)
	h[12], h[13] = uint8(hl/4)<<4, flags
	copy(h[20:], opts)
	return append(h, p...)
}

func tcpSetOff(seg []byte, words uint8) []byte {
	seg[12] = words<<4 | seg[12]&0x0f
	return seg
}

// decodeSeeds are the recordings' packets and the decode cases.
func decodeSeeds(t testing.TB) []packet {
	var out []packet
	for _, c := range captures {
		out = append(out, loadPackets(t, filepath.Join("testdata", c.file))...)
	}
	for _, c := range decodeCases() {
		out = append(out, packet{data: c.data, lt: c.lt})
	}
	return out
}

// TestDecodeCases checks what the cases decode to, so that a change to
// both the decoder and the reference could not go unseen.
func TestDecodeCases(t *testing.T) {
	want := map[string]string{
		"ethernet ipv4 syn":          "Ethernet IPv4 TCP",
		"qinq":                       "Ethernet Dot1Q Dot1Q IPv6 TCP",
		"bridged ethernet":           "Ethernet Ethernet IPv4 TCP",
		"sll2 ipgre":                 "Linux SLL2 Ethernet IPv4 TCP",
		"null big-endian":            "Loopback IPv4 TCP",
		"null family 256":            "error",
		"6in4":                       "IPv4 IPv6 TCP",
		"ipv6 hop-by-hop":            "IPv6 TCP",
		"ipv6 jumbo":                 "IPv6 TCP",
		"ipv6 jumbo 65535":           "error",
		"ipv6 routing header":        "IPv6",
		"ipv4 more fragments":        "IPv4",
		"ip in ip, inner fragment":   "IPv4 IPv4",
		"tcp bad options":            "IPv4 TCP",
		"ipv4 total length 0":        "IPv4 TCP",
		"ipv4 version 6 in ethernet": "Ethernet IPv4 TCP",
	}
	var d decoder
	for _, c := range decodeCases() {
		w, ok := want[c.name]
		if !ok {
			continue
		}
		got := "error"
		if o := ownDecode(&d, c.data, c.lt); o.OK {
			got = fmt.Sprint(o.Layers)
			got = got[1 : len(got)-1]
		}
		if got != w {
			t.Errorf("%s: decoded %s, want %s", c.name, got, w)
		}
	}
}

// TestDecodeAsGopacket holds the decoder to gopacket on the recordings'
// packets and the decode cases, on every cut of them, and on random
// corruptions of them with every link type.
func TestDecodeAsGopacket(t *testing.T) {
	g, d := newGopacketDecoder(), new(decoder)
	rng := rand.New(rand.NewPCG(1, 2))
	lts := []LinkType{0, 1, 12, 14, 101, 108, 113, 228, 229, 276}
	for _, p := range decodeSeeds(t) {
		for n := range len(p.data) + 1 {
			compareDecoders(t, g, d, p.data[:n], p.lt)
		}
		b := make([]byte, len(p.data))
		for range 50 {
			copy(b, p.data)
			for range 1 + rng.IntN(3) {
				if len(b) > 0 {
					b[rng.IntN(len(b))] = byte(rng.Uint32())
				}
			}
			compareDecoders(t, g, d, b, lts[rng.IntN(len(lts))])
		}
	}
}

// FuzzDecode holds the decoder to gopacket's DecodingLayerParser set up as
// the Tracker had it: the same error or not, the same layers, and the same
// fields the Tracker reads.
func FuzzDecode(f *testing.F) {
	for _, p := range decodeSeeds(f) {
		f.Add(p.data, uint16(p.lt))
	}
	g, d := newGopacketDecoder(), new(decoder)
	f.Fuzz(func(t *testing.T, data []byte, lt uint16) {
		compareDecoders(t, g, d, data, LinkType(lt))
	})
}
