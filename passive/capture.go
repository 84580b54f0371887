package passive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/bpf"
)

// ErrNoCapability is returned when live capture is not allowed.
var ErrNoCapability = errors.New("live capture needs CAP_NET_RAW: run as root, grant it to the binary with `setcap cap_net_raw+ep /usr/bin/mitmwatch`, or to the service with a systemd drop-in (AmbientCapabilities=CAP_NET_RAW and CapabilityBoundingSet=CAP_NET_RAW)")

// Ring geometry: by default frames hold the largest packet a loopback or a
// GRO-merged segment can be, so handshakes are never cut.
const (
	liveFrame = 1 << 17
	liveRing  = 32 << 20
)

// LiveOptions say what to capture.
type LiveOptions struct {
	Ports []uint16 // server ports; empty: 443
	// HandshakeOnly keeps only the packets a handshake needs: SYN, FIN
	// and RST, and segments that start with a TLS handshake, alert or
	// ChangeCipherSpec record or a CONNECT exchange. Bulk data never
	// leaves the kernel; a certificate chain split across segments is
	// then seen only as far as its first segment (receive offload
	// usually merges the server's flight into one).
	HandshakeOnly bool
	PollTimeout   time.Duration // default 100 ms
	// FrameSize bounds a captured packet (a power of two, at least
	// 2048); default 128 KiB. RingSize is the kernel's buffer; default
	// 32 MiB.
	FrameSize, RingSize int
}

// Filter builds the classic BPF program for Ethernet-framed packets: TCP
// over IPv4 (unfragmented) or IPv6 to or from one of ports, optionally
// only the packets a handshake needs (see LiveOptions.HandshakeOnly). On a
// loopback interface every packet is seen twice, leaving and arriving;
// dropOutgoing keeps one copy, as libpcap does.
func Filter(ports []uint16, handshakeOnly, dropOutgoing bool) ([]bpf.RawInstruction, error) {
	if len(ports) == 0 {
		ports = []uint16{443}
	}
	if len(ports) > 32 {
		return nil, fmt.Errorf("%d ports: at most 32", len(ports))
	}
	var p prog
	if dropOutgoing {
		p.add(bpf.LoadExtension{Num: bpf.ExtType})
		p.jump(bpf.JumpEqual, 4 /* PACKET_OUTGOING */, "drop", "")
	}
	p.add(bpf.LoadAbsolute{Off: 12, Size: 2})
	p.jump(bpf.JumpEqual, 0x0800, "", "not4")
	// IPv4: TCP, not a fragment; X = header length.
	p.add(bpf.LoadAbsolute{Off: 23, Size: 1})
	p.jump(bpf.JumpNotEqual, 6, "drop", "")
	p.add(bpf.LoadAbsolute{Off: 20, Size: 2})
	p.jump(bpf.JumpBitsSet, 0x1fff, "drop", "")
	p.add(bpf.LoadMemShift{Off: 14})
	p.jumpTo("ports")
	p.label("not4")
	p.jump(bpf.JumpNotEqual, 0x86dd, "drop", "")
	// IPv6: TCP directly after the fixed header; X = 40.
	p.add(bpf.LoadAbsolute{Off: 20, Size: 1})
	p.jump(bpf.JumpNotEqual, 6, "drop", "")
	p.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})
	p.label("ports")
	p.add(bpf.LoadIndirect{Off: 14, Size: 2})
	for _, port := range ports {
		p.jump(bpf.JumpEqual, uint32(port), "match", "")
	}
	p.add(bpf.LoadIndirect{Off: 16, Size: 2})
	for _, port := range ports {
		p.jump(bpf.JumpEqual, uint32(port), "match", "")
	}
	p.jumpTo("drop")
	p.label("match")
	if handshakeOnly {
		p.add(bpf.LoadIndirect{Off: 14 + 13, Size: 1}) // flags
		p.jump(bpf.JumpBitsSet, 0x07, "keep", "")      // FIN, SYN, RST
		p.add(bpf.LoadIndirect{Off: 14 + 12, Size: 1}) // data offset
		p.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
		p.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x3c})
		p.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		p.add(bpf.TAX{})
		p.add(bpf.LoadIndirect{Off: 14, Size: 1}) // first payload byte; none: the program ends, dropping
		for _, b := range []uint32{recordHandshake, recordAlert, recordChangeCipherSpec, 'C', 'H'} {
			p.jump(bpf.JumpEqual, b, "keep", "")
		}
		p.jumpTo("drop")
	}
	p.label("keep")
	p.add(bpf.RetConstant{Val: liveFrame})
	p.label("drop")
	p.add(bpf.RetConstant{Val: 0})
	return p.assemble()
}

// prog assembles a BPF program with symbolic jump targets.
type prog struct {
	ins    []bpf.Instruction
	labels map[string]int
	jumps  []pendingJump
}

type pendingJump struct {
	at      int
	cond    bpf.JumpTest
	val     uint32
	yes, no string
	always  bool
}

func (p *prog) add(i bpf.Instruction) { p.ins = append(p.ins, i) }

func (p *prog) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.ins)
}

// jump adds a conditional jump; an empty label means the next instruction.
func (p *prog) jump(cond bpf.JumpTest, val uint32, yes, no string) {
	p.jumps = append(p.jumps, pendingJump{at: len(p.ins), cond: cond, val: val, yes: yes, no: no})
	p.ins = append(p.ins, nil)
}

func (p *prog) jumpTo(label string) {
	p.jumps = append(p.jumps, pendingJump{at: len(p.ins), yes: label, always: true})
	p.ins = append(p.ins, nil)
}

func (p *prog) assemble() ([]bpf.RawInstruction, error) {
	skip := func(from int, label string) (uint8, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := p.labels[label]
		if !ok || to <= from || to-from-1 > 255 {
			return 0, fmt.Errorf("bad jump from %d to %q", from, label)
		}
		return uint8(to - from - 1), nil
	}
	for _, j := range p.jumps {
		yes, err := skip(j.at, j.yes)
		if err != nil {
			return nil, err
		}
		if j.always {
			p.ins[j.at] = bpf.Jump{Skip: uint32(yes)}
			continue
		}
		no, err := skip(j.at, j.no)
		if err != nil {
			return nil, err
		}
		p.ins[j.at] = bpf.JumpIf{Cond: j.cond, Val: j.val, SkipTrue: yes, SkipFalse: no}
	}
	return bpf.Assemble(p.ins)
}

// Sniff feeds live packets to t until ctx is done, then flushes t.
func Sniff(ctx context.Context, l *Live, t *Tracker) error {
	defer t.Flush()
	for ctx.Err() == nil {
		data, ci, err := l.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			t.Packet(data, ci, l.linkType)
		case IsTimeout(err):
		default:
			return err
		}
	}
	return nil
}
