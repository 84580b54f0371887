// Package lab is an in-process network lab on loopback.
//
// mitmwatch has to tell a genuine registry or Git host from the boxes that
// sit in front of one: a corporate TLS inspection proxy, an interceptor whose
// CA copies a public issuer's name, a box that downgrades TLS, a firewall that
// answers plain HTTP on port 443, a captive portal, a black hole. None of
// these can be summoned on a CI machine without a network or root, so this
// package builds each of them from real parts — a generated PKI with a
// stand-in public root, real crypto/tls and net/http servers, and a real
// third-party intercepting proxy (github.com/elazarl/goproxy) — listening on
// 127.0.0.1 on ports chosen by the kernel.
//
// Every server is ready as soon as its constructor returns (the listener
// exists), reports its address with Addr, and releases its listener,
// connections and goroutines with Close. The mitmwatch-demo command and
// the scenario tests both build on it; the mitmwatch binary never links it.
package lab
