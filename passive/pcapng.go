package passive

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/gopacket/gopacket"
)

// pcapng block types.
const (
	blockIDB = 1          // interface description
	blockOPB = 2          // packet (obsolete)
	blockSPB = 3          // simple packet
	blockNRB = 4          // name resolution
	blockISB = 5          // interface statistics
	blockEPB = 6          // enhanced packet
	blockSHB = 0x0a0d0d0a // section header, the same in either byte order
)

// ngReader reads pcapng: sections in either byte order (one of a version
// other than 1.0 is skipped), the interfaces each describes (link type,
// snap length, timestamp resolution and offset), and its enhanced, simple
// and obsolete packet blocks; other blocks are skipped. It reads as
// pcapgo's NgReader with WantMixedLinkType and SkipUnknownVersion did,
// except where pcapgo was wrong: a length that runs past its block's end
// is an error (pcapgo read on into the next blocks, then skipped to the
// end of the file); timestamps of 2^-n s, and finer than 10^-19 s, are
// converted exactly (pcapgo's integer factors were off, its ticks per
// second wrapped around); a file that ends inside a name resolution block
// ends the reading as anywhere else (pcapgo made that an error).
type ngReader struct {
	src    source
	order         // the section's byte order
	typ    uint32 // the current block's type
	left   uint32 // the bytes of the current block not yet read
	ifaces []ngIface
}

// ngIface is an interface a section describes.
type ngIface struct {
	linkType LinkType
	snaplen  uint32
	tsresol  uint8  // 10^-n seconds, 2^-n with the top bit set
	offset   uint64 // seconds added to every timestamp
	// A timestamp counts unit ticks a second; when that is not a whole
	// number of nanoseconds either way, or more ticks than fit 64 bits
	// (unit 0: then a timestamp is below a second, div ticks a
	// nanosecond), the nanoseconds are rounded down.
	unit, mul, div uint64
}

// blockError is a pcapng block whose content runs past its end.
type blockError struct {
	typ  uint32
	past uint32 // bytes beyond the end
}

func (e *blockError) Error() string {
	return fmt.Sprintf("pcapng block of type %#x: content runs %d bytes past its length", e.typ, e.past)
}

// newNgReader reads the first section header. br's buffer must hold an
// option, up to 64 KiB.
func newNgReader(br *bufio.Reader) (*ngReader, error) {
	r := &ngReader{src: source{br: br}}
	if err := r.block(); err != nil {
		return nil, err
	}
	if r.typ != blockSHB {
		return nil, fmt.Errorf("first block of type %#x, not a section header", r.typ)
	}
	if err := r.section(); err != nil {
		return nil, err
	}
	return r, nil
}

// take counts n bytes of the current block as read.
func (r *ngReader) take(n uint32) error {
	if n > r.left {
		return &blockError{r.typ, n - r.left}
	}
	r.left -= n
	return nil
}

// next reads n bytes of the current block, valid until the next read.
func (r *ngReader) next(n int) ([]byte, error) {
	b, err := r.src.next(n)
	if err != nil {
		return nil, short(1, err)
	}
	return b, r.take(uint32(n))
}

// skipRest skips what is left of the current block.
func (r *ngReader) skipRest() error {
	n := r.left
	r.left = 0
	return r.src.skip(n)
}

// block reads the type and length of the next block, and the byte order of
// a section header. A stream that ends before it gives io.EOF.
func (r *ngReader) block() error {
	h, err := r.src.next(8)
	if err != nil {
		return err
	}
	r.typ = r.u32(h)
	length := [4]byte(h[4:8])
	head := uint32(8)
	if r.typ == blockSHB {
		bom, err := r.src.next(4)
		if err != nil {
			return short(1, err)
		}
		switch binary.BigEndian.Uint32(bom) {
		case 0x1a2b3c4d:
			r.be = true
		case 0x4d3c2b1a:
			r.be = false
		default:
			return fmt.Errorf("pcapng section header: byte-order magic %x", bom)
		}
		head = 12
	}
	r.left = r.u32(length[:])
	return r.take(head)
}

// section reads the rest of a section header, skipping sections of a
// version other than 1.0 as the pcapng specification asks.
func (r *ngReader) section() error {
	r.ifaces = r.ifaces[:0]
	for {
		b, err := r.next(12) // version, section length
		if err != nil {
			return err
		}
		if r.u16(b) == 1 && r.u16(b[2:]) == 0 {
			break
		}
		if err := r.skipRest(); err != nil {
			return err
		}
		for {
			if err := r.block(); err != nil {
				return err
			}
			if r.typ == blockSHB {
				break
			}
			if err := r.skipRest(); err != nil {
				return err
			}
		}
	}
	return r.skipOptions()
}

// option reads the next option of the current block: its code and value,
// valid until the next read. Code 0 ends the options, as does reaching the
// block's trailing length.
func (r *ngReader) option() (uint16, []byte, error) {
	if r.left == 4 {
		return 0, nil, nil
	}
	h, err := r.next(4)
	if err != nil {
		return 0, nil, err
	}
	code, n := r.u16(h), uint32(r.u16(h[2:]))
	if code == 0 {
		if n != 0 {
			return 0, nil, fmt.Errorf("pcapng block of type %#x: end of options of length %d", r.typ, n)
		}
		return 0, nil, nil
	}
	padded := (n + 3) &^ 3
	if err := r.take(padded); err != nil {
		return 0, nil, err
	}
	v, err := r.src.next(int(padded))
	if err != nil {
		return 0, nil, short(1, err)
	}
	return code, v[:n], nil
}

// skipOptions reads the options of the current block and skips its rest.
func (r *ngReader) skipOptions() error {
	for {
		code, _, err := r.option()
		if err != nil {
			return err
		}
		if code == 0 {
			return r.skipRest()
		}
	}
}

// readPacket returns the next packet; its data is valid until the next
// call.
func (r *ngReader) readPacket() ([]byte, gopacket.CaptureInfo, LinkType, error) {
	for {
		if err := r.block(); err != nil {
			return nil, gopacket.CaptureInfo{}, 0, err
		}
		var err error
		switch r.typ {
		case blockEPB, blockOPB:
			return r.packetBlock()
		case blockSPB:
			return r.simplePacket()
		case blockIDB:
			err = r.iface()
		case blockISB:
			err = r.statistics()
		case blockNRB:
			err = r.names()
		case blockSHB:
			err = r.section()
		default:
			err = r.skipRest()
		}
		if err != nil {
			return nil, gopacket.CaptureInfo{}, 0, err
		}
	}
}

// packetBlock reads an enhanced or an obsolete packet block.
func (r *ngReader) packetBlock() ([]byte, gopacket.CaptureInfo, LinkType, error) {
	var ci gopacket.CaptureInfo
	b, err := r.next(20)
	if err != nil {
		return nil, ci, 0, err
	}
	id := r.u32(b)
	if r.typ == blockOPB {
		id = uint32(r.u16(b)) // then 2 bytes of drops count
	}
	ts := uint64(r.u32(b[4:]))<<32 | uint64(r.u32(b[8:]))
	caplen, origlen := r.u32(b[12:]), r.u32(b[16:])
	if uint64(id) >= uint64(len(r.ifaces)) {
		return nil, ci, 0, fmt.Errorf("pcapng packet block: interface %d of %d described in the section", id, len(r.ifaces))
	}
	f := &r.ifaces[id]
	ci = gopacket.CaptureInfo{Timestamp: f.time(ts), CaptureLength: int(caplen), Length: int(origlen), InterfaceIndex: int(id)}
	data, err := r.data(caplen)
	if err != nil {
		return nil, ci, 0, err
	}
	if r.typ == blockEPB {
		err = r.skipOptions()
	} else {
		err = r.skipRest()
	}
	if err != nil {
		return nil, ci, 0, err
	}
	return data, ci, f.linkType, nil
}

// simplePacket reads a simple packet block: a packet of the section's first
// interface, cut to its snap length, without a timestamp.
func (r *ngReader) simplePacket() ([]byte, gopacket.CaptureInfo, LinkType, error) {
	var ci gopacket.CaptureInfo
	b, err := r.next(4)
	if err != nil {
		return nil, ci, 0, err
	}
	origlen := r.u32(b)
	if len(r.ifaces) == 0 {
		return nil, ci, 0, fmt.Errorf("pcapng simple packet block in a section without an interface")
	}
	caplen := origlen
	if snap := r.ifaces[0].snaplen; snap != 0 && caplen > snap {
		caplen = snap
	}
	ci = gopacket.CaptureInfo{CaptureLength: int(caplen), Length: int(origlen)}
	data, err := r.data(caplen)
	if err == nil {
		err = r.skipRest()
	}
	if err != nil {
		return nil, ci, 0, err
	}
	return data, ci, r.ifaces[0].linkType, nil
}

// data reads a packet's bytes and their padding to 4 bytes.
func (r *ngReader) data(n uint32) ([]byte, error) {
	padded := (uint64(n) + 3) &^ 3
	if padded > uint64(r.left) {
		return nil, &blockError{r.typ, uint32(min(padded-uint64(r.left), math.MaxUint32))}
	}
	if uint64(n) > math.MaxInt {
		return nil, fmt.Errorf("pcapng: a packet of %d bytes, more than this platform addresses", n)
	}
	data, err := r.src.copy(int(n))
	if err != nil {
		return nil, short(1, err)
	}
	r.left -= uint32(padded)
	return data, r.src.skip(uint32(padded) - n)
}

// iface reads an interface description block.
func (r *ngReader) iface() error {
	b, err := r.next(8)
	if err != nil {
		return err
	}
	f := ngIface{linkType: LinkType(r.u16(b)), snaplen: r.u32(b[4:])}
	for {
		code, v, err := r.option()
		if err != nil {
			return err
		}
		if code == 0 {
			break
		}
		switch {
		case code == 9 && len(v) >= 1: // if_tsresol
			f.tsresol = v[0]
		case code == 14 && len(v) >= 8: // if_tsoffset
			f.offset = r.u64(v)
		}
	}
	if err := r.skipRest(); err != nil {
		return err
	}
	if err := f.setResolution(); err != nil {
		return err
	}
	if len(r.ifaces) >= maxIfaces {
		return fmt.Errorf("pcapng section: more than %d interfaces", maxIfaces)
	}
	r.ifaces = append(r.ifaces, f)
	return nil
}

// maxIfaces bounds the interfaces a section describes: a capture names a
// few, and a file of nothing but interface blocks would otherwise hold
// more than twice its size in memory (pcapgo set no bound).
const maxIfaces = 1 << 16

// statistics reads an interface statistics block, for its checks only.
func (r *ngReader) statistics() error {
	b, err := r.next(12)
	if err != nil {
		return err
	}
	if id := r.u32(b); uint64(id) >= uint64(len(r.ifaces)) {
		return fmt.Errorf("pcapng interface statistics block: interface %d of %d described in the section", id, len(r.ifaces))
	}
	return r.skipOptions()
}

// names walks a name resolution block's records, for its checks only: a
// record of an address type must hold the address.
func (r *ngReader) names() error {
	for r.left > 0 {
		h, err := r.next(4)
		if err != nil {
			return err
		}
		typ, n := r.u16(h), min(uint32(r.u16(h[2:])), r.left)
		if typ == 0 { // end of records
			break
		}
		if need := [...]uint32{1: 4, 2: 16, 3: 6, 4: 8, 5: 0}[min(typ, 5)]; n < need {
			return fmt.Errorf("pcapng name resolution block: a record of type %d of %d bytes, too short for its address", typ, n)
		}
		padded := (n + 3) &^ 3
		if err := r.take(padded); err != nil {
			return err
		}
		if err := r.src.skip(padded); err != nil {
			return err
		}
	}
	return r.skipRest()
}

// setResolution reads if_tsresol, 10^-6 if absent.
func (f *ngIface) setResolution() error {
	if f.tsresol == 0 {
		f.tsresol = 6
	}
	exp := f.tsresol & 0x7f
	if exp > 63 {
		return fmt.Errorf("pcapng interface: timestamp resolution %#x, finer than 2^-63 or 10^-63", f.tsresol)
	}
	if f.tsresol&0x80 != 0 {
		f.unit = 1 << exp
	} else if exp <= 19 {
		f.unit = 1
		for range exp {
			f.unit *= 10
		}
	} else if exp-9 <= 19 {
		f.div = 1
		for range exp - 9 {
			f.div *= 10
		}
	}
	switch {
	case f.unit != 0 && 1e9%f.unit == 0:
		f.mul = 1e9 / f.unit
	case f.unit != 0 && f.unit%1e9 == 0:
		f.div = f.unit / 1e9
	}
	return nil
}

// time is the time of a timestamp of ts ticks.
func (f *ngIface) time(ts uint64) time.Time {
	var sec, ns uint64
	switch {
	case f.unit == 0: // below a second
		if f.div != 0 {
			ns = ts / f.div
		}
	case f.mul != 0:
		sec, ns = ts/f.unit, ts%f.unit*f.mul
	case f.div != 0:
		sec, ns = ts/f.unit, ts%f.unit/f.div
	default:
		sec = ts / f.unit
		hi, lo := bits.Mul64(ts%f.unit, 1e9)
		ns, _ = bits.Div64(hi, lo, f.unit)
	}
	return time.Unix(int64(sec+f.offset), int64(ns)).UTC()
}
