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
)

// readBuffer is the read-ahead on a capture file: large enough that
// reading costs few system calls.
const readBuffer = 256 << 10

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
	pr, err := openCapture(bufio.NewReaderSize(r, readBuffer))
	if err != nil {
		return err
	}
	err = feed(ctx, t, pr)
	t.Flush()
	return err
}

// packetReader reads a capture file's packets; a packet's data is valid
// until the next call.
type packetReader interface {
	readPacket() ([]byte, gopacket.CaptureInfo, LinkType, error)
}

// openCapture reads a capture's header, telling pcapng from pcap by its
// first block's type.
func openCapture(br *bufio.Reader) (packetReader, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("reading capture header: %w", err)
	}
	if binary.LittleEndian.Uint32(magic) == blockSHB {
		ng, err := newNgReader(br)
		if err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
		return ng, nil
	}
	pr, err := newPcapReader(br)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng capture: %w", err)
	}
	return pr, nil
}

// ctxEvery is how many packets are read between looks at the context.
const ctxEvery = 1 << 16

func feed(ctx context.Context, t *Tracker, r packetReader) error {
	for n := 1; ; n++ {
		if n%ctxEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		data, ci, lt, err := r.readPacket()
		switch {
		case err == nil:
			t.Packet(data, ci, lt)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		default:
			return err
		}
	}
}
