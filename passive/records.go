package passive

import (
	"errors"
	"fmt"
)

// errNotTLS means the bytes of a direction do not form TLS records.
var errNotTLS = errors.New("not TLS")

// item is what a recordReader yields.
type item struct {
	kind    itemKind
	msgType uint8  // itemHandshake
	body    []byte // itemHandshake: the message body, aliasing the reader's buffer
	alert   Alert  // itemAlert
}

type itemKind uint8

const (
	itemHandshake itemKind = iota + 1
	itemAlert
	itemChangeCipherSpec
	itemEncrypted // application data, or an alert or handshake record after ChangeCipherSpec
)

// recordReader walks the TLS records of one direction as the bytes arrive
// and yields the plaintext handshake messages, which may be split across
// records or share one. Its input is the whole direction from its first
// TLS byte; it remembers how far it got.
type recordReader struct {
	off       int    // offset of the next record header in the input
	hs        []byte // handshake bytes gathered from records
	hsOff     int    // offset of the next handshake message in hs
	encrypted bool   // ChangeCipherSpec seen: later records are ciphertext
	limit     int    // bound on hs
}

func (r *recordReader) reset(limit int) {
	*r = recordReader{hs: r.hs[:0], limit: limit}
}

// next returns the next item, errShort when more bytes are needed, or
// errNotTLS or another error when the input is not a TLS stream.
func (r *recordReader) next(in []byte) (item, error) {
	for range len(in) + 1 { // every pass consumes a record or returns
		if it, ok, err := r.message(); ok || err != nil {
			return it, err
		}
		if len(in)-r.off < recordHeaderLen {
			return item{}, errShort
		}
		typ, n, ok := recordHeader(in[r.off:])
		if !ok {
			return item{}, errNotTLS
		}
		if len(in)-r.off-recordHeaderLen < n {
			return item{}, errShort
		}
		body := in[r.off+recordHeaderLen : r.off+recordHeaderLen+n]
		r.off += recordHeaderLen + n
		switch {
		case typ == recordChangeCipherSpec:
			return item{kind: itemChangeCipherSpec}, nil
		case typ == recordApplicationData || r.encrypted:
			return item{kind: itemEncrypted}, nil
		case typ == recordAlert:
			if n != 2 {
				return item{kind: itemEncrypted}, nil
			}
			return item{kind: itemAlert, alert: Alert{Level: body[0], Description: body[1]}}, nil
		}
		if len(r.hs)+n > r.limit {
			return item{}, fmt.Errorf("handshake longer than %d bytes", r.limit)
		}
		r.hs = append(r.hs, body...)
	}
	return item{}, errShort
}

// message returns the next complete handshake message gathered so far.
func (r *recordReader) message() (item, bool, error) {
	rest := r.hs[r.hsOff:]
	if len(rest) < 4 {
		return item{}, false, nil
	}
	n := int(rest[1])<<16 | int(rest[2])<<8 | int(rest[3])
	if n > r.limit {
		return item{}, false, fmt.Errorf("handshake message of %d bytes exceeds %d", n, r.limit)
	}
	if len(rest)-4 < n {
		return item{}, false, nil
	}
	r.hsOff += 4 + n
	return item{kind: itemHandshake, msgType: rest[0], body: rest[4 : 4+n]}, true, nil
}
