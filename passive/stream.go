package passive

// stream reassembles the first bytes of one direction of a TCP connection:
// just enough for the handshake, never more than a limit. Segments may
// arrive split, repeated (retransmissions, overlaps) or out of order within
// a small window; bytes beyond the window are dropped and the stream is
// marked as having a gap.
type stream struct {
	base    uint32 // sequence number of buf[0]
	based   bool
	buf     []byte
	pending []segment // out of order, waiting for the bytes before them
	held    int       // bytes in pending
	full    bool      // the limit was reached: later bytes are ignored
	gap     bool      // bytes were lost: the capture missed them, or the window overflowed
}

// segment is an out-of-order piece of a stream, copied.
type segment struct {
	off  int
	data []byte
}

// Bounds on the out-of-order window of a stream.
const (
	maxPending = 16
)

// reset empties the stream, keeping its buffer for reuse.
func (s *stream) reset() {
	clear(s.pending)
	*s = stream{buf: s.buf[:0], pending: s.pending[:0]}
}

// setISN anchors the stream at a SYN's initial sequence number: data starts
// at isn+1.
func (s *stream) setISN(isn uint32) {
	if len(s.buf) == 0 {
		s.base, s.based = isn+1, true
	}
}

// add places a segment's payload starting at sequence number seq, bounded
// by limit bytes from the start of the stream. It reports whether the
// contiguous part grew.
func (s *stream) add(seq uint32, data []byte, limit int) bool {
	if len(data) == 0 || s.full {
		return false
	}
	if !s.based {
		s.base, s.based = seq, true
	}
	off := int(int32(seq - s.base))
	if off < 0 {
		if off+len(data) <= 0 {
			return false // an old retransmission
		}
		data, off = data[-off:], 0
	}
	if off >= limit {
		return false // beyond what is kept; it may have come early
	}
	if off+len(data) > limit {
		data = data[:limit-off]
	}
	end := len(s.buf)
	if off > end {
		s.hold(off, data, limit)
		return false
	}
	if off+len(data) <= end {
		return false // a retransmission of bytes already held
	}
	s.buf = append(s.buf, data[end-off:]...)
	s.drain()
	if len(s.buf) >= limit {
		s.full = true
	}
	return true
}

// hold keeps an out-of-order segment, unless the window (maxPending
// segments, limit bytes) is full.
func (s *stream) hold(off int, data []byte, limit int) {
	for _, p := range s.pending {
		if p.off == off && len(p.data) >= len(data) {
			return // retransmitted while waiting
		}
	}
	if len(s.pending) == maxPending || s.held+len(data) > limit {
		s.gap = true
		return
	}
	s.held += len(data)
	s.pending = append(s.pending, segment{off: off, data: append([]byte(nil), data...)})
}

// drain appends the held segments that the contiguous part now reaches.
func (s *stream) drain() {
	for progress := true; progress && len(s.pending) > 0; {
		progress = false
		for i := 0; i < len(s.pending); i++ {
			p := s.pending[i]
			if p.off > len(s.buf) {
				continue
			}
			if tail := p.off + len(p.data) - len(s.buf); tail > 0 {
				s.buf = append(s.buf, p.data[len(p.data)-tail:]...)
			}
			s.held -= len(p.data)
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			i--
			progress = true
		}
	}
}
