package passive

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mitmwatch/mitmwatch/detector"
)

// directions returns the client's and the server's bytes of a recording's
// one connection, in order (loopback reorders nothing).
func directions(t testing.TB, file string) (client, server []byte) {
	pkts := loadPackets(t, filepath.Join("testdata", file))
	var clientPort layers.TCPPort
	for _, p := range pkts {
		pkt := gopacket.NewPacket(p.data, layers.LinkType(p.lt).LayerType(), gopacket.NoCopy)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			continue
		}
		if tcp.SYN && !tcp.ACK {
			clientPort = tcp.SrcPort
		}
		if tcp.SrcPort == clientPort {
			client = append(client, tcp.Payload...)
		} else {
			server = append(server, tcp.Payload...)
		}
	}
	return client, server
}

// FuzzHandshake feeds two byte streams, cut into segments, to a flow as a
// client's and a server's, then judges what it made of them: nothing may
// panic, and every bound must hold.
func FuzzHandshake(f *testing.F) {
	for _, c := range captures {
		client, server := directions(f, c.file)
		f.Add(client, server, uint8(200))
		f.Add(client, server, uint8(7))
	}
	f.Add([]byte("CONNECT a:443 HTTP/1.1\r\n\r\n\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"), []byte("HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03\x00\x04\x02\x00\x00\x00"), uint8(3))
	f.Fuzz(func(t *testing.T, client, server []byte, cut uint8) {
		const limit = DefaultMaxFlowBytes / 2
		var fl flow
		fl.reset(limit)
		fl.conn.SYN = time.Unix(1, 0)
		fl.conn.SYNACK = time.Unix(2, 0)
		step := int(cut%64) + 1
		ts := time.Unix(3, 0)
		for i, j := 0, 0; i < len(client) || j < len(server); i, j = i+step, j+step {
			if i < len(client) {
				fl.data(true, ts, 1000+uint32(i), client[i:min(i+step, len(client))])
			}
			if j < len(server) {
				fl.data(false, ts, 5000+uint32(j), server[j:min(j+step, len(server))])
			}
		}
		fl.closed(false, cut%2 == 0)
		fl.finish(EndNoAnswer)
		c := &fl.conn
		if len(fl.c2s.buf) > limit || len(fl.s2c.buf) > limit || len(fl.crr.hs) > limit || len(fl.srr.hs) > limit {
			t.Fatalf("bound broken: %d %d %d %d", len(fl.c2s.buf), len(fl.s2c.buf), len(fl.crr.hs), len(fl.srr.hs))
		}
		if len(c.Certificates) > maxCerts || len(c.Plain) > maxPlain || len(c.ServerTTLs) > maxTTLs {
			t.Fatalf("bound broken: %d certificates, %d plain bytes", len(c.Certificates), len(c.Plain))
		}
		if h := c.Hello; h != nil && (len(h.CipherSuites) > maxListLen || len(h.Extensions) > maxListLen || len(h.ALPN) > maxListLen) {
			t.Fatal("hello lists unbounded")
		}
		a := &Analysis{}
		a.Add(c)
		rep := judge(a, detector.Policy{})
		if len(rep.Results) > 1 {
			t.Fatalf("%d results from one connection", len(rep.Results))
		}
	})
}

// FuzzStream checks the reassembler against the truth: segments cut from
// one byte stream, at any offsets, in any order, repeated and overlapping,
// must only ever assemble a prefix of that stream, within the bounds, and
// all of it once the whole stream is given.
func FuzzStream(f *testing.F) {
	_, server := directions(f, "curl-tls12-origin.pcap")
	f.Add(server, []byte{0, 10, 20, 5, 30, 40, 2, 3, 4})
	f.Add([]byte("hello, reassembler"), []byte{5, 3, 0, 5, 9, 9, 200, 1, 2})
	f.Fuzz(func(t *testing.T, truth, ops []byte) {
		const limit = 1 << 10
		const base = 0xfffffff0 // sequence numbers wrap inside the stream
		var s stream
		s.setISN(base - 1)
		for i := 0; i+2 < len(ops) && i < 3*64; i += 3 {
			if len(truth) == 0 {
				break
			}
			off := (int(ops[i])<<4 | int(ops[i+1])) % len(truth)
			n := min(int(ops[i+2])+1, len(truth)-off)
			s.add(uint32(base+off), truth[off:off+n], limit)
			if len(s.buf) > limit || s.held > limit || len(s.pending) > maxPending {
				t.Fatalf("bounds broken: %d bytes, %d held, %d pending", len(s.buf), s.held, len(s.pending))
			}
			if !bytes.HasPrefix(truth, s.buf) {
				t.Fatalf("assembled bytes are not a prefix of the stream")
			}
		}
		s.add(base, truth, limit)
		if want := truth[:min(len(truth), limit)]; !bytes.Equal(s.buf, want) {
			t.Fatalf("after the whole stream: %d bytes, want %d", len(s.buf), len(want))
		}
	})
}

// FuzzParsers runs the hello and certificate parsers on arbitrary bodies.
func FuzzParsers(f *testing.F) {
	for _, c := range captures {
		client, server := directions(f, c.file)
		for _, b := range [][]byte{client, server} {
			var r recordReader
			r.reset(1 << 16)
			for range 8 {
				it, err := r.next(b)
				if err != nil {
					break
				}
				if it.kind == itemHandshake {
					f.Add(it.msgType, bytes.Clone(it.body))
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		switch typ % 3 {
		case 0:
			if h, err := ParseClientHello(body); err == nil {
				FingerprintsOf(h, nil)
			}
		case 1:
			if s, err := ParseServerHello(body); err == nil {
				FingerprintsOf(nil, s)
			}
		case 2:
			ders, _ := ParseCertificate(body)
			if len(ders) > maxCerts {
				t.Fatal("too many certificates")
			}
		}
	})
}

// FuzzPacket gives the tracker arbitrary frames of every link type it
// reads, seeded with real ones.
func FuzzPacket(f *testing.F) {
	for _, c := range captures {
		for _, p := range loadPackets(f, filepath.Join("testdata", c.file)) {
			f.Add(p.data, uint16(p.lt))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, lt uint16) {
		tr := NewTracker(Options{AnyPort: true, MaxFlows: 4}, func(*Conn) {})
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(data), Length: len(data)}
		tr.Packet(data, ci, LinkType(lt))
		tr.Packet(data, ci, LinkType(lt))
		tr.Flush()
	})
}
