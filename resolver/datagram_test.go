package resolver

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// TestReadDatagram: a datagram is read whole, at any size, and a refused
// port, a deadline and a cancelled read give the errors, word for word,
// that reading the connection itself gives.
func TestReadDatagram(t *testing.T) {
	t.Parallel()
	dial := func(t *testing.T, addr string) net.Conn {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	listen := func(t *testing.T) net.PacketConn {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	plain := func(c net.Conn) ([]byte, error) { return readDatagramAlloc(c) }

	t.Run("whole", func(t *testing.T) {
		pc := listen(t)
		c := dial(t, pc.LocalAddr().String())
		for _, size := range []int{0, 12, 5000, 65507} {
			if _, err := c.Write([]byte("q")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte{0xa5}, size)
			if _, err := pc.WriteTo(want, from); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			got, err := readDatagram(c)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%d bytes sent: read %d, %v", size, len(got), err)
			}
		}
	})

	errorsOf := func(t *testing.T, setup func(t *testing.T) net.Conn) {
		t.Helper()
		var got [2]string
		var timeout [2]bool
		for i, read := range []func(net.Conn) ([]byte, error){readDatagram, plain} {
			_, err := read(setup(t))
			if err == nil {
				t.Fatal("no error")
			}
			got[i] = err.Error()
			ne, ok := err.(net.Error)
			timeout[i] = ok && ne.Timeout()
		}
		if timeout[0] != timeout[1] {
			t.Errorf("timeout %v, reading the connection: %v", timeout[0], timeout[1])
		}
		// The local port differs from one connection to the next.
		norm := func(s string) string { return s[strings.IndexByte(s, '>'):] }
		if norm(got[0]) != norm(got[1]) {
			t.Errorf("error %q, reading the connection gives %q", got[0], got[1])
		}
	}
	for _, tc := range []struct {
		name   string
		closed bool // nothing listens: the port answers unreachable
		setup  func(t *testing.T, addr string) net.Conn
	}{
		{"refused", true, func(t *testing.T, addr string) net.Conn {
			c := dial(t, addr)
			c.Write([]byte("q"))
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			return c
		}},
		{"deadline", false, func(t *testing.T, addr string) net.Conn {
			c := dial(t, addr)
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			return c
		}},
		{"deadline in the past", false, func(t *testing.T, addr string) net.Conn {
			c := dial(t, addr)
			c.SetReadDeadline(longAgo)
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := listen(t)
			addr := pc.LocalAddr().String()
			if tc.closed {
				pc.Close()
			}
			errorsOf(t, func(t *testing.T) net.Conn { return tc.setup(t, addr) })
		})
	}
}
