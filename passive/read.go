package passive

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// readBuffer is the read-ahead on a capture file: large enough that
// reading costs few system calls.
const readBuffer = 256 << 10

// pcapngMagic is the block type of a pcapng Section Header Block.
const pcapngMagic = 0x0A0D0D0A

// ReadFile feeds every packet of a pcap or pcapng file (plain or gzipped
// pcap) to t, then flushes it. Cancelling ctx stops the reading.
func ReadFile(ctx context.Context, path string, t *Tracker) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := Read(ctx, f, t); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Read feeds every packet of a pcap or pcapng stream to t, telling the
// formats apart by their magic number, then flushes t. A capture cut short
// mid-packet (a capture still being written, or interrupted) is read up to
// the cut without error. Cancelling ctx stops the reading.
func Read(ctx context.Context, r io.Reader, t *Tracker) error {
	br := bufio.NewReaderSize(r, readBuffer)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("reading capture header: %w", err)
	}
	if binary.LittleEndian.Uint32(magic) == pcapngMagic {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return fmt.Errorf("pcapng: %w", err)
		}
		err = feed(ctx, t, ng, func(ci gopacket.CaptureInfo) LinkType {
			if iface, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return LinkType(iface.LinkType)
			}
			return LinkType(ng.LinkType())
		})
		t.Flush()
		return err
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return fmt.Errorf("not a pcap or pcapng capture: %w", err)
	}
	lt := LinkType(pr.LinkType())
	err = feed(ctx, t, pr, func(gopacket.CaptureInfo) LinkType { return lt })
	t.Flush()
	return err
}

// zeroCopyReader is a packet source that reuses its buffer: pcapgo's
// readers and live capture handles.
type zeroCopyReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// ctxEvery is how many packets are read between looks at the context.
const ctxEvery = 1 << 16

func feed(ctx context.Context, t *Tracker, r zeroCopyReader, linkType func(gopacket.CaptureInfo) LinkType) error {
	for n := 1; ; n++ {
		if n%ctxEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		data, ci, err := r.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			t.Packet(data, ci, linkType(ci))
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		default:
			return err
		}
	}
}
