package passive

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
)

// Options bound what a Tracker watches and keeps.
type Options struct {
	// Ports are the server ports whose connections are tracked; empty
	// means 443. AnyPort tracks every connection whose client speaks TLS
	// (or CONNECT) first.
	Ports   []uint16
	AnyPort bool
	// MaxFlows bounds the handshakes tracked at once; beyond it the
	// oldest are reported as evicted. Default 65536.
	MaxFlows int
	// MaxFlowBytes bounds the bytes kept per flow, both directions
	// together. Default 64 KiB.
	MaxFlowBytes int
	// IdleTimeout ends a handshake that saw no packet for this long, in
	// capture time. Default 30 s.
	IdleTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultMaxFlows     = 1 << 16
	DefaultMaxFlowBytes = 64 << 10
	DefaultIdleTimeout  = 30 * time.Second
)

// Stats counts what a Tracker saw.
type Stats struct {
	Packets     uint64 // packets given to the tracker
	Bytes       uint64 // their captured bytes
	TCP         uint64 // packets decoded down to TCP
	Watched     uint64 // TCP packets to or from a watched port
	Handshake   uint64 // packets that went to a tracked handshake
	Undecodable uint64 // packets of an unsupported link type, or broken
	Snapped     uint64 // tracked packets cut short by the snap length
	Conns       uint64 // connections reported
	Evicted     uint64 // handshakes given up because the table was full
}

// endpoint is an address (IPv4 mapped into IPv6) and port.
type endpoint struct {
	addr [16]byte
	port uint16
}

func (e endpoint) addrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(e.addr).Unmap(), e.port)
}

func (e endpoint) less(o endpoint) bool {
	if c := bytes.Compare(e.addr[:], o.addr[:]); c != 0 {
		return c < 0
	}
	return e.port < o.port
}

// flowKey names a connection whichever way a packet goes.
type flowKey struct{ lo, hi endpoint }

func keyOf(a, b endpoint) flowKey {
	if b.less(a) {
		a, b = b, a
	}
	return flowKey{a, b}
}

// Tracker follows TCP connections to the watched ports through their
// handshakes and reports each as a Conn. Packets of connections it does not
// track cost a decode and a map lookup, and no allocation. A Tracker is not
// safe for concurrent use.
type Tracker struct {
	opts  Options
	watch []bool // indexed by port
	emit  func(*Conn)

	flows map[flowKey]*flow
	free  []*flow

	dec decoder

	now       time.Time // latest packet time
	lastSweep time.Time
	stats     Stats
}

// NewTracker returns a tracker that calls emit with every connection whose
// observation is over. emit must not keep the pointer.
func NewTracker(opts Options, emit func(*Conn)) *Tracker {
	if opts.MaxFlows <= 0 {
		opts.MaxFlows = DefaultMaxFlows
	}
	if opts.MaxFlowBytes <= 0 {
		opts.MaxFlowBytes = DefaultMaxFlowBytes
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	t := &Tracker{
		opts:  opts,
		watch: make([]bool, 1<<16),
		emit:  emit,
		flows: make(map[flowKey]*flow),
	}
	ports := opts.Ports
	if len(ports) == 0 {
		ports = []uint16{443}
	}
	for _, p := range ports {
		t.watch[p] = true
	}
	if opts.AnyPort {
		for i := range t.watch {
			t.watch[i] = true
		}
	}
	return t
}

// Packet takes one captured packet. data is not kept after it returns.
func (t *Tracker) Packet(data []byte, ci gopacket.CaptureInfo, lt LinkType) {
	t.stats.Packets++
	t.stats.Bytes += uint64(len(data))
	if ci.Timestamp.After(t.now) {
		t.now = ci.Timestamp
	}
	d := &t.dec
	if !d.decode(data, lt) {
		t.stats.Undecodable++
		return
	}
	if !d.tcp {
		return // not TCP, or a fragment: not worth reassembling for a handshake
	}
	t.stats.TCP++
	src, dst := endpoint{d.src, d.srcPort}, endpoint{d.dst, d.dstPort}
	ttl, syn, ack := d.ttl, d.flags&tcpSYN != 0, d.flags&tcpACK != 0
	if !t.watch[dst.port] && !t.watch[src.port] {
		t.maybeSweep()
		return
	}
	t.stats.Watched++
	key := keyOf(src, dst)
	f := t.flows[key]
	ts := ci.Timestamp
	payload := d.payload
	switch {
	case syn && !ack && t.watch[dst.port]:
		if f != nil {
			if f.conn.SYNACK.IsZero() && len(f.c2s.buf) == 0 {
				f.conn.SYN = ts // a retransmitted SYN: time from the last one
				f.c2s.setISN(d.seq)
				f.last = ts
				return
			}
			t.finish(f, EndNoAnswer) // the 4-tuple is reused
		}
		f = t.start(key, src, dst, ts)
		if f == nil {
			return
		}
		f.conn.SYN = ts
		f.c2s.setISN(d.seq)
		t.stats.Handshake++
		return
	case f == nil:
		if !t.watch[dst.port] || !clientStart(payload) {
			t.maybeSweep()
			return
		}
		if f = t.start(key, src, dst, ts); f == nil {
			return
		}
	}
	t.stats.Handshake++
	f.last = ts
	fromClient := src == f.clientEP
	if !fromClient {
		if syn && ack && f.conn.SYNACK.IsZero() {
			f.conn.SYNACK, f.conn.SYNACKTTL = ts, ttl
			f.s2c.setISN(d.seq)
		} else {
			f.serverTTL(ttl)
		}
	}
	if len(payload) > 0 {
		if ci.CaptureLength < ci.Length {
			f.truncated = true
			t.stats.Snapped++
		}
		f.data(fromClient, ts, d.seq, payload)
	}
	if rst := d.flags&tcpRST != 0; rst || d.flags&tcpFIN != 0 {
		f.closed(fromClient, rst)
	}
	if f.complete() {
		t.finish(f, EndHandshake)
	}
	t.maybeSweep()
}

// clientStart reports whether a payload from a client the tracker has no
// SYN for starts a handshake worth following: a ClientHello record or a
// CONNECT request.
func clientStart(p []byte) bool {
	if len(p) >= 6 && p[0] == recordHandshake && p[1] == 3 && p[5] == typeClientHello {
		return true
	}
	return len(p) >= 8 && string(p[:8]) == "CONNECT "
}

// start tracks a new connection from client to server.
func (t *Tracker) start(key flowKey, client, server endpoint, ts time.Time) *flow {
	if len(t.flows) >= t.opts.MaxFlows {
		t.evict()
	}
	var f *flow
	if n := len(t.free); n > 0 {
		f, t.free = t.free[n-1], t.free[:n-1]
	} else {
		f = new(flow)
	}
	f.reset(t.opts.MaxFlowBytes / 2)
	f.key, f.clientEP, f.last = key, client, ts
	f.conn.Client, f.conn.Server, f.conn.Start = client.addrPort(), server.addrPort(), ts
	t.flows[key] = f
	return f
}

// finish reports a flow and returns it to the pool.
func (t *Tracker) finish(f *flow, why End) {
	f.finish(why)
	delete(t.flows, f.key)
	t.stats.Conns++
	if t.emit != nil {
		t.emit(&f.conn)
	}
	f.conn = Conn{}
	t.free = append(t.free, f)
}

// maybeSweep ends idle handshakes, at most once a second of capture time.
func (t *Tracker) maybeSweep() {
	if len(t.flows) == 0 || t.now.Sub(t.lastSweep) < time.Second {
		return
	}
	t.lastSweep = t.now
	for _, f := range t.flows {
		if t.now.Sub(f.last) > t.opts.IdleTimeout {
			t.finish(f, EndNoAnswer)
		}
	}
}

// evict makes room in a full table: idle flows first, then any, until a
// sixteenth of the table is free.
func (t *Tracker) evict() {
	keep := t.opts.MaxFlows - max(t.opts.MaxFlows/16, 1)
	for _, f := range t.flows {
		if t.now.Sub(f.last) > t.opts.IdleTimeout/4 {
			t.finish(f, EndNoAnswer)
		}
	}
	for _, f := range t.flows {
		if len(t.flows) <= keep {
			break
		}
		t.stats.Evicted++
		f.conn.End = EndEvicted
		t.finish(f, EndEvicted)
	}
}

// Flush reports every handshake still tracked, as at the end of a capture.
func (t *Tracker) Flush() {
	for _, f := range t.flows {
		t.finish(f, EndNoAnswer)
	}
}

// Stats returns the counters so far.
func (t *Tracker) Stats() Stats { return t.stats }
