// Package passive gives mitmwatch eyes on real traffic. An active probe
// shows what mitmwatch itself meets; some middleboxes intercept only certain
// hosts, or only clients that do not look like browsers, so what `go mod
// download` or `npm install` really met can differ. This package reads a
// capture (pcap or pcapng, offline, or packets from a live handle), follows
// each TCP connection to the watched ports through its handshake —
// SYN/SYN-ACK timing and TTL, the ClientHello, the ServerHello and, below
// TLS 1.3, the certificate chain — and turns it into the same
// detector.Observation the active probe produces, so the same
// detector.Judge, called by whoever reads the capture, names the same
// verdict and product.
//
// The pipeline is Tracker (a decoder of its own into preallocated fields,
// a bounded table of handshakes, a small reassembler per direction) → Conn →
// Analysis (groups of alike connections, one Observation each, chains
// verified against the public and the system roots as of the capture's
// time) → Capture (one detector.Case per group). Judging is the caller's
// (detector.Judge, detector.PerHost) and printing is package report's.
//
// Packets are decoded, and pcap and pcapng files read, by this package's
// own code, held to gopacket's layers and pcapgo by differential tests
// and fuzzing: linking those packages costs the daemon 5.5 MB of resident
// memory (the GC scans layers' 2.5 MB lookup tables every cycle). Live
// capture uses gopacket's afpacket, which links neither.
//
// What a capture cannot show is said, not invented: TLS 1.3 encrypts the
// certificate, so such a connection is judged on its version, cipher and
// ALPN only, and its group says the chain was not visible.
package passive
