//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernels the lab runs on have no netem qdisc, so a delayed link is a
// relay in user space: a "wan" namespace sits between the router and the
// internet with two veth ends and no address, and a packet socket on each
// end forwards every Ethernet frame to the other after the delay, in order.
// ARP crosses it like everything else, so router and internet still share
// one Ethernet segment, 198.18.2.0/24.

// relayQueue bounds the frames in flight in each direction; a full queue
// drops, as a congested link does.
const relayQueue = 4096

// relay forwards frames between two interfaces of one namespace.
type relay struct {
	files []*os.File
	wg    sync.WaitGroup
}

// startRelay opens a packet socket on a and on b, inside ns, and forwards
// each frame one way after delay.
func startRelay(ns, a, b string, delay time.Duration) (*relay, error) {
	r := &relay{}
	err := Do(ns, func() error {
		for _, name := range []string{a, b} {
			f, err := packetSocket(name)
			if err != nil {
				return err
			}
			r.files = append(r.files, f)
		}
		return nil
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	r.forward(r.files[0], r.files[1], delay)
	r.forward(r.files[1], r.files[0], delay)
	return r, nil
}

// packetSocket opens a non-blocking AF_PACKET socket bound to ifname that
// sees the frames arriving there, not those it sends. As an *os.File it is
// served by Go's poller, so Close wakes a blocked Read.
func packetSocket(ifname string) (*os.File, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket on %s: PACKET_IGNORE_OUTGOING: %w", ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket on %s: bind: %w", ifname, err)
	}
	return os.NewFile(uintptr(fd), "packet:"+ifname), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

type frame struct {
	due  time.Time
	data []byte
}

// forward reads frames from in and writes each to out once delay has
// passed since it arrived. Both goroutines end when the files are closed.
func (r *relay) forward(in, out *os.File, delay time.Duration) {
	q := make(chan frame, relayQueue)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		defer close(q)
		buf := make([]byte, 65536)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return
			}
			select {
			case q <- frame{time.Now().Add(delay), append([]byte(nil), buf[:n]...)}:
			default: // queue full: the frame is lost
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		for f := range q {
			if wait := time.Until(f.due); wait > 0 {
				time.Sleep(wait)
			}
			out.Write(f.data) // after Close this fails, and the queue drains
		}
	}()
}

// Close stops the relay and waits for its goroutines.
func (r *relay) Close() error {
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.Close())
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// noOffload turns off checksum and segmentation offloads on ifname (in ns),
// so that the frames it sends are whole: complete checksums, at most one
// MTU. A relay forwarding frames from user space cannot finish a checksum
// or split a 64 KiB segment the way a veth peer inside the kernel can.
func noOffload(ns, ifname string) error {
	return Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		const (
			ethtoolSTXCSUM = 0x17 // ETHTOOL_STXCSUM
			ethtoolSTSO    = 0x1f // ETHTOOL_STSO
			ethtoolSGSO    = 0x24 // ETHTOOL_SGSO
		)
		for _, cmd := range []uint32{ethtoolSTSO, ethtoolSGSO, ethtoolSTXCSUM} {
			v := struct{ cmd, data uint32 }{cmd, 0}
			var ifr struct {
				name [unix.IFNAMSIZ]byte
				data unsafe.Pointer
				_    [16]byte
			}
			copy(ifr.name[:], ifname)
			ifr.data = unsafe.Pointer(&v)
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
				return fmt.Errorf("ethtool %#x on %s: %w", cmd, ifname, e)
			}
		}
		return nil
	})
}
