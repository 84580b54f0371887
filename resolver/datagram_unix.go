//go:build unix

package resolver

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
)

// datagramBuffers are read buffers of the largest DNS message.
//
// miekg/dns makes one anew for every datagram it reads when asked to take
// whatever comes: 64 KiB of fresh memory per query, faulted in and
// cleared, a fifth of what a check allocates. A buffer is taken only once
// the socket is readable, so the dozens of lookups waiting at once hold
// none, and the datagram is copied out at its length.
var datagramBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<16); return &b }}

// readDatagram reads one datagram from c (a connected UDP socket), whole,
// honouring c's deadline, with the errors c.Read gives.
func readDatagram(c net.Conn) ([]byte, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return readDatagramAlloc(c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return readDatagramAlloc(c)
	}
	var out []byte
	var readErr error
	err = rc.Read(func(fd uintptr) bool {
		buf := datagramBuffers.Get().(*[]byte)
		defer datagramBuffers.Put(buf)
		n, err := syscall.Read(int(fd), *buf)
		if errors.Is(err, syscall.EAGAIN) {
			return false // not yet: wait until readable
		}
		if err != nil {
			readErr = os.NewSyscallError("read", err)
			return true
		}
		out = bytes.Clone((*buf)[:n])
		return true
	})
	var raw *net.OpError
	if errors.As(err, &raw) {
		err = raw.Err // the raw read's own wrapping, replaced by Read's below
	}
	if err == nil {
		err = readErr
	}
	if err != nil {
		return nil, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return out, nil
}
