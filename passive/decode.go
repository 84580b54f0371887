package passive

import "encoding/binary"

// LinkType is the link-layer header type of captured packets, numbered as
// pcap's LINKTYPE_ values (and gopacket's layers.LinkType).
type LinkType uint16

// The link types a Tracker decodes.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback: a 4-byte address family
	LinkTypeEthernet  LinkType = 1   // Ethernet II
	LinkTypeRaw       LinkType = 101 // IPv4 or IPv6, told apart by the version
	LinkTypeLoop      LinkType = 108 // OpenBSD loopback
	LinkTypeLinuxSLL  LinkType = 113 // Linux "any" device, version 1
	LinkTypeIPv4      LinkType = 228
	LinkTypeIPv6      LinkType = 229
	LinkTypeLinuxSLL2 LinkType = 276 // Linux "any" device, version 2
)

// layer is a header the decoder knows; layerNone ends decoding.
type layer uint8

const (
	layerNone layer = iota
	layerEthernet
	layerDot1Q
	layerSLL
	layerSLL2
	layerLoopback
	layerIPv4
	layerIPv6
	layerTCP
)

// TCP flags as they sit in the header's 14th byte.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// decoder decodes a captured packet down to TCP into fields it owns, so a
// packet costs no allocation. It decodes what the gopacket
// DecodingLayerParser it replaces did, with the same outcome for every
// input (FuzzDecode holds it to that): the links above, 802.1Q and QinQ
// tags, IPv4 and IPv6 (its hop-by-hop header included, no other extension
// header), IP in IP, and TCP. A header is followed while the previous one
// names a header of this set and bytes are left; any other next header ends
// decoding without error. gopacket's layer tables, which this replaces,
// cost the daemon 5.5 MB of resident memory.
type decoder struct {
	// The innermost IP header: the one TCP came in when tcp is set.
	ip       layer    // layerIPv4 or layerIPv6, layerNone if none was decoded
	src, dst [16]byte // IPv4 addresses are mapped into IPv6
	ttl      uint8    // TTL or hop limit
	frag     uint16   // IPv4 flags and fragment offset

	tcp              bool // decoded down to TCP
	srcPort, dstPort uint16
	seq              uint32
	flags            uint8 // tcpSYN etc.
	payload          []byte

	// trail holds the headers decoded, outermost first, as far as it
	// reaches; n counts them all.
	trail [8]layer
	n     int
}

// decode decodes data, a packet of link type lt. It reports false for a
// packet it cannot decode: a link type it does not know, a header cut
// short or malformed.
func (d *decoder) decode(data []byte, lt LinkType) bool {
	d.ip, d.tcp, d.n = layerNone, false, 0
	next := firstLayer(lt, data)
	for next != layerNone {
		cur := next
		var ok bool
		switch cur {
		case layerEthernet:
			next, data, ok = ethernet(data)
		case layerDot1Q:
			next, data, ok = dot1Q(data)
		case layerSLL:
			next, data, ok = linuxSLL(data)
		case layerSLL2:
			next, data, ok = linuxSLL2(data)
		case layerLoopback:
			next, data, ok = loopback(data)
		case layerIPv4:
			next, data, ok = d.ipv4(data)
		case layerIPv6:
			next, data, ok = d.ipv6(data)
		case layerTCP:
			next, ok = layerNone, d.tcpHeader(data)
		}
		if !ok {
			return false
		}
		if d.n < len(d.trail) {
			d.trail[d.n] = cur
		}
		d.n++
		if len(data) == 0 {
			break
		}
	}
	return d.n > 0
}

// firstLayer is the header a link type's packets start with; raw IP is told
// apart by its version nibble.
func firstLayer(lt LinkType, data []byte) layer {
	switch lt {
	case LinkTypeEthernet:
		return layerEthernet
	case LinkTypeLinuxSLL:
		return layerSLL
	case LinkTypeLinuxSLL2:
		return layerSLL2
	case LinkTypeNull, LinkTypeLoop:
		return layerLoopback
	case LinkTypeRaw, LinkTypeIPv4, LinkTypeIPv6, 12, 14: // 12, 14: raw IP on some BSDs
		if len(data) > 0 && data[0]>>4 == 6 {
			return layerIPv6
		}
		return layerIPv4
	}
	return layerNone
}

// etherNext is the header an EtherType names. Values below 0x0600 are
// 802.3 lengths (an LLC header follows) and name none.
func etherNext(t uint16) layer {
	switch t {
	case 0x0800, 0xffff: // 0xffff: gopacket's mark for raw IP, decoded as IPv4
		return layerIPv4
	case 0x86dd:
		return layerIPv6
	case 0x8100, 0x88a8: // 802.1Q, QinQ
		return layerDot1Q
	case 0x6558: // transparent Ethernet bridging
		return layerEthernet
	}
	return layerNone
}

// ipNext is the header an IP protocol number names.
func ipNext(p uint8) layer {
	switch p {
	case 4, 94: // IP in IP
		return layerIPv4
	case 41:
		return layerIPv6
	case 6:
		return layerTCP
	}
	return layerNone
}

func ethernet(b []byte) (layer, []byte, bool) {
	if len(b) < 14 {
		return layerNone, nil, false
	}
	return etherNext(binary.BigEndian.Uint16(b[12:])), b[14:], true
}

func dot1Q(b []byte) (layer, []byte, bool) {
	if len(b) < 4 {
		return layerNone, nil, false
	}
	return etherNext(binary.BigEndian.Uint16(b[2:])), b[4:], true
}

// linuxSLL reads the 16-byte cooked header: packet type, ARPHRD type,
// address length (the address field holds 8), address, protocol.
func linuxSLL(b []byte) (layer, []byte, bool) {
	if len(b) < 16 || binary.BigEndian.Uint16(b[4:]) > 8 {
		return layerNone, nil, false
	}
	return etherNext(binary.BigEndian.Uint16(b[14:])), b[16:], true
}

// linuxSLL2 reads the 20-byte cooked header: protocol, reserved, interface
// index, ARPHRD type, packet type, address length, address.
func linuxSLL2(b []byte) (layer, []byte, bool) {
	if len(b) < 20 || b[11] > 8 {
		return layerNone, nil, false
	}
	switch binary.BigEndian.Uint16(b[8:]) {
	case 778: // ARPHRD_IPGRE: gopacket takes the payload for Ethernet
		return layerEthernet, b[20:], true
	case 770, 803: // ARPHRD_FRAD, ARPHRD_IEEE80211_RADIOTAP
		return layerNone, b[20:], true
	}
	return etherNext(binary.BigEndian.Uint16(b)), b[20:], true
}

// loopback reads the 4-byte address family of BSD loopback, in whichever
// byte order makes it small.
func loopback(b []byte) (layer, []byte, bool) {
	if len(b) < 4 {
		return layerNone, nil, false
	}
	var family uint32
	if b[0] == 0 && b[1] == 0 {
		family = binary.BigEndian.Uint32(b)
	} else {
		family = binary.LittleEndian.Uint32(b)
	}
	switch family {
	case 2: // AF_INET
		return layerIPv4, b[4:], true
	case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD and OpenBSD, FreeBSD, Darwin
		return layerIPv6, b[4:], true
	}
	return layerNone, b[4:], family <= 0xff
}

// ipv4 reads an IPv4 header. The payload ends at the total length, or at
// the capture's end if that comes first; a total length of 0 (left to the
// NIC by segmentation offload) means the whole capture. A fragment's
// payload is not decoded further.
func (d *decoder) ipv4(b []byte) (layer, []byte, bool) {
	if len(b) < 20 {
		return layerNone, nil, false
	}
	hl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total == 0 {
		total = len(b)
	}
	if total < 20 || hl < 20 || hl > total {
		return layerNone, nil, false
	}
	if len(b) > total {
		b = b[:total]
	} else if hl > len(b) {
		return layerNone, nil, false
	}
	if !ipv4Options(b[20:hl]) {
		return layerNone, nil, false
	}
	d.ip = layerIPv4
	d.frag = binary.BigEndian.Uint16(b[6:])
	d.ttl = b[8]
	d.src = [16]byte{10: 0xff, 11: 0xff, 12: b[12], 13: b[13], 14: b[14], 15: b[15]}
	d.dst = [16]byte{10: 0xff, 11: 0xff, 12: b[16], 13: b[17], 14: b[18], 15: b[19]}
	if d.frag&0x3fff != 0 { // more fragments, or an offset
		return layerNone, b[hl:], true
	}
	return ipNext(b[9]), b[hl:], true
}

// ipv4Options reports whether IPv4 options are well formed: every option
// but End and NOP has a length of at least 2 that stays in the header.
func ipv4Options(o []byte) bool {
	for len(o) > 0 {
		switch o[0] {
		case 0: // end of options
			return true
		case 1: // NOP
			o = o[1:]
		default:
			if len(o) < 2 || o[1] < 2 || int(o[1]) > len(o) {
				return false
			}
			o = o[o[1]:]
		}
	}
	return true
}

// ipv6 reads an IPv6 header and a hop-by-hop header right after it. The
// payload ends at the payload length, or at the capture's end; a payload
// length of 0 needs a hop-by-hop header with a jumbo payload option.
func (d *decoder) ipv6(b []byte) (layer, []byte, bool) {
	if len(b) < 40 {
		return layerNone, nil, false
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	nh := b[6]
	d.ip, d.ttl = layerIPv6, b[7]
	copy(d.src[:], b[8:24])
	copy(d.dst[:], b[24:40])
	p := b[40:]
	if plen != 0 && plen < len(p) {
		p = p[:plen]
	}
	if nh != 0 {
		if plen == 0 {
			return layerNone, nil, false
		}
		return ipNext(nh), p, true
	}
	// Hop-by-hop options: next header, length in 8 bytes beyond the first 8.
	if len(p) < 2 {
		return layerNone, nil, false
	}
	hl := int(p[1])*8 + 8
	if len(p) < hl {
		return layerNone, nil, false
	}
	jumbo, ok := hopByHopJumbo(p[2:hl])
	switch {
	case !ok:
		return layerNone, nil, false
	case jumbo != 0 && plen == 0:
		// The jumbo length counts the hop-by-hop header; in a 32-bit int
		// it may be negative.
		end := min(int(jumbo), len(p))
		if end < hl {
			return layerNone, nil, false
		}
		return ipNext(p[0]), p[hl:end], true
	case jumbo != 0 || plen == 0:
		return layerNone, nil, false
	}
	return ipNext(p[0]), p[hl:], true
}

// hopByHopJumbo checks the options of a hop-by-hop header and returns the
// jumbo payload length, 0 if there is none. A jumbo option must hold 4
// bytes and more than 65535.
func hopByHopJumbo(o []byte) (uint32, bool) {
	var jumbo []byte
	seen := false
	for len(o) > 0 {
		if o[0] == 0 { // Pad1
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1])+2 > len(o) {
			return 0, false
		}
		if o[0] == 0xc2 && !seen {
			jumbo, seen = o[2:int(o[1])+2], true
		}
		o = o[int(o[1])+2:]
	}
	if !seen {
		return 0, true
	}
	if len(jumbo) != 4 {
		return 0, false
	}
	n := binary.BigEndian.Uint32(jumbo)
	return n, n > 0xffff
}

// tcpHeader reads a TCP header. Its options are not read: malformed ones
// are not an error (gopacket stopped reading them and went on).
func (d *decoder) tcpHeader(b []byte) bool {
	if len(b) < 20 {
		return false
	}
	off := int(b[12]>>4) * 4
	if off < 20 || off > len(b) {
		return false
	}
	d.tcp = true
	d.srcPort = binary.BigEndian.Uint16(b)
	d.dstPort = binary.BigEndian.Uint16(b[2:])
	d.seq = binary.BigEndian.Uint32(b[4:])
	d.flags = b[13]
	d.payload = b[off:]
	return true
}

func (l layer) String() string {
	switch l {
	case layerEthernet:
		return "Ethernet"
	case layerDot1Q:
		return "Dot1Q"
	case layerSLL:
		return "Linux SLL"
	case layerSLL2:
		return "Linux SLL2"
	case layerLoopback:
		return "Loopback"
	case layerIPv4:
		return "IPv4"
	case layerIPv6:
		return "IPv6"
	case layerTCP:
		return "TCP"
	}
	return "none"
}
