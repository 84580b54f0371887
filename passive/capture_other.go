//go:build !linux

package passive

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/gopacket/gopacket"
)

// errLiveUnsupported is returned by OpenLive where there is no AF_PACKET.
var errLiveUnsupported = errors.New("live capture needs Linux (AF_PACKET) and is not available on " + runtime.GOOS + ": record with `tcpdump -w` and judge the file with `mitmwatch pcap`")

// Live is a live capture; on this system it can never be opened.
type Live struct{ linkType LinkType }

// OpenLive fails: live capture is Linux-only.
func OpenLive(iface string, _ LiveOptions) (*Live, error) {
	return nil, fmt.Errorf("capture on %s: %w", iface, errLiveUnsupported)
}

// LinkType is the link type of the captured packets.
func (l *Live) LinkType() LinkType { return l.linkType }

// ZeroCopyReadPacketData always fails: live capture is Linux-only.
func (l *Live) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	return nil, gopacket.CaptureInfo{}, errLiveUnsupported
}

// Drops returns the packets the kernel dropped: none here.
func (l *Live) Drops() (uint, error) { return 0, errLiveUnsupported }

// Close stops the capture.
func (l *Live) Close() {}

// IsTimeout reports whether err is a live capture's poll timeout.
func IsTimeout(error) bool { return false }
