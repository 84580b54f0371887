package passive

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
)

// The readers of pcap and pcapng files read what gopacket's pcapgo readers
// did (FuzzReadCapture holds them to it) without linking gopacket's layer
// tables. A length read from a file is trusted only as far as bytes
// arrive: no buffer is allocated beyond maxEager before its bytes are read.

// maxEager is the longest packet whose buffer is allocated before its
// bytes are read: libpcap's MAXIMUM_SNAPLEN. A longer one grows its buffer
// as its bytes arrive.
const maxEager = 262144

// source reads a capture through a bufio.Reader.
type source struct {
	br  *bufio.Reader
	buf []byte // packet bytes copied out of br, reused
}

// next returns the next n bytes (at most br's size), valid until the next
// read. A stream that ends before them gives io.EOF, one that ends among
// them io.ErrUnexpectedEOF.
func (s *source) next(n int) ([]byte, error) {
	b, err := s.br.Peek(n)
	if err != nil {
		return nil, short(len(b), err)
	}
	s.br.Discard(n)
	return b, nil
}

// packet returns the next n bytes, from br's buffer (no copy) where they
// fit, valid until the next read.
func (s *source) packet(n int) ([]byte, error) {
	if n <= s.br.Size() {
		return s.next(n)
	}
	return s.copy(n)
}

// copy returns the next n bytes copied into s.buf, valid until the next
// copy.
func (s *source) copy(n int) ([]byte, error) {
	if n <= maxEager {
		if cap(s.buf) < n {
			s.buf = make([]byte, max(n, 64<<10))
		}
		k, err := io.ReadFull(s.br, s.buf[:n])
		if err != nil {
			return nil, short(k, err)
		}
		return s.buf[:n], nil
	}
	b := s.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), max(len(b), maxEager)))
		}
		k, err := io.ReadFull(s.br, b[len(b):min(n, cap(b))])
		b = b[:len(b)+k]
		if err != nil {
			s.buf = b[:0]
			return nil, short(len(b), err)
		}
	}
	s.buf = b[:0]
	return b, nil
}

// skip discards the next n bytes.
func (s *source) skip(n uint32) error {
	for n > 0 {
		k, err := s.br.Discard(int(min(n, 1<<30)))
		n -= uint32(k)
		if err != nil {
			return short(1, err)
		}
	}
	return nil
}

// short is the error of a read that stopped after read bytes.
func short(read int, err error) error {
	if err == io.EOF && read > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// pcapReader reads the classic pcap format: either byte order, microsecond
// or nanosecond timestamps.
type pcapReader struct {
	src      source
	order          // the file's byte order
	unit     int64 // nanoseconds per unit of the timestamps' fraction
	snaplen  uint32
	linkType LinkType
}

// newPcapReader reads a pcap file's header; a gzipped file is unpacked.
func newPcapReader(br *bufio.Reader) (*pcapReader, error) {
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(gz, readBuffer)
	}
	r := &pcapReader{src: source{br: br}}
	h, err := r.src.next(24)
	if err != nil {
		return nil, err
	}
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		r.unit = 1000
	case 0xa1b23c4d:
		r.unit = 1
	case 0xd4c3b2a1:
		r.be, r.unit = true, 1000
	case 0x4d3cb2a1:
		r.be, r.unit = true, 1
	default:
		return nil, fmt.Errorf("unknown magic number %x", h[:4])
	}
	if major, minor := r.u16(h[4:]), r.u16(h[6:]); major != 2 || minor != 4 {
		return nil, fmt.Errorf("pcap version %d.%d, not 2.4", major, minor)
	}
	r.snaplen = r.u32(h[16:])
	r.linkType = LinkType(r.u32(h[20:])) // the high bits say an FCS length
	return r, nil
}

// order reads a capture's integers in the order its header chose. A
// type of its own rather than a binary.ByteOrder keeps the reads of every
// packet's header free of interface calls.
type order struct{ be bool } // big-endian

func (o order) u16(b []byte) uint16 {
	if o.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (o order) u32(b []byte) uint32 {
	if o.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (o order) u64(b []byte) uint64 {
	if o.be {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// readPacket returns the next packet; its data is valid until the next
// call. Records longer than the snap length are accepted up to libpcap's
// maximum snap length, as tcpdump reads what writers that do not truncate
// wrote.
func (r *pcapReader) readPacket() ([]byte, gopacket.CaptureInfo, LinkType, error) {
	h, err := r.src.next(16)
	if err != nil {
		return nil, gopacket.CaptureInfo{}, 0, err
	}
	sec, frac, caplen, origlen := r.u32(h), r.u32(h[4:]), r.u32(h[8:]), r.u32(h[12:])
	if caplen > max(r.snaplen, maxEager) || uint64(caplen) > math.MaxInt {
		return nil, gopacket.CaptureInfo{}, 0, fmt.Errorf("pcap: a packet of %d bytes, beyond the snap length %d", caplen, r.snaplen)
	}
	if caplen > origlen {
		return nil, gopacket.CaptureInfo{}, 0, fmt.Errorf("pcap: %d bytes captured of a packet of %d", caplen, origlen)
	}
	ci := gopacket.CaptureInfo{
		// In 64 bits: pcapgo scaled the fraction in 32, so that one of
		// 4294968 µs or more (not a valid one) wrapped around.
		Timestamp:     time.Unix(int64(sec), int64(frac)*r.unit).UTC(),
		CaptureLength: int(caplen),
		Length:        int(origlen),
	}
	data, err := r.src.packet(int(caplen))
	return data, ci, r.linkType, err
}
