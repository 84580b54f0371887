package passive

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
)

// Live is a packet capture on one interface through AF_PACKET (pure Go,
// no libpcap), filtered in the kernel with classic BPF.
type Live struct {
	h        *afpacket.TPacket
	linkType LinkType
}

// OpenLive starts capturing on iface. Packets already queued before the
// filter was attached are discarded, so every packet read matches it.
func OpenLive(iface string, opts LiveOptions) (*Live, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", iface, err)
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = 100 * time.Millisecond
	}
	if opts.FrameSize <= 0 {
		opts.FrameSize = liveFrame
	}
	if opts.RingSize <= 0 {
		opts.RingSize = liveRing
	}
	block := max(opts.FrameSize, 1<<20)
	// TPACKET_V3 hands over a block of packets per wake-up, when it fills
	// or after the block timeout, instead of one packet per wake-up: with
	// a busy link that is most of the capture's cost. Each packet keeps
	// its own kernel timestamp, so round trips are measured as before.
	h, err := afpacket.NewTPacket(afpacket.OptInterface(iface), afpacket.TPacketVersion3,
		afpacket.OptFrameSize(opts.FrameSize), afpacket.OptBlockSize(block), afpacket.OptNumBlocks(max(opts.RingSize/block, 1)),
		afpacket.OptPollTimeout(opts.PollTimeout), afpacket.OptBlockTimeout(max(time.Millisecond, min(opts.PollTimeout, 64*time.Millisecond))))
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("capture on %s: %w", iface, ErrNoCapability)
		}
		return nil, fmt.Errorf("capture on %s: %w", iface, err)
	}
	prog, err := Filter(opts.Ports, opts.HandshakeOnly, ifc.Flags&net.FlagLoopback != 0)
	if err == nil {
		err = h.SetBPF(prog)
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("capture on %s: filter: %w", iface, err)
	}
	l := &Live{h: h, linkType: LinkTypeEthernet}
	l.drain(opts.RingSize / 64)
	return l, nil
}

// drain discards what the ring received before the filter was attached;
// the ring holds at most n packets of 64 bytes or more.
func (l *Live) drain(n int) {
	for range n {
		if _, _, err := l.h.ZeroCopyReadPacketData(); err != nil {
			return
		}
	}
}

// LinkType is the link type of the captured packets.
func (l *Live) LinkType() LinkType { return l.linkType }

// ZeroCopyReadPacketData returns the next packet; the data is valid until
// the next call. It returns afpacket.ErrTimeout when none came within the
// poll timeout.
func (l *Live) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	return l.h.ZeroCopyReadPacketData()
}

// Drops returns the packets the kernel dropped because the ring was full.
func (l *Live) Drops() (uint, error) {
	s, s3, err := l.h.SocketStats()
	if err != nil {
		return 0, err
	}
	return s.Drops() + s3.Drops(), nil
}

// Close stops the capture.
func (l *Live) Close() { l.h.Close() }

// IsTimeout reports whether err is a live capture's poll timeout.
func IsTimeout(err error) bool { return errors.Is(err, afpacket.ErrTimeout) }
