//go:build !unix

package resolver

import "net"

// readDatagram reads one datagram from c, whole.
func readDatagram(c net.Conn) ([]byte, error) { return readDatagramAlloc(c) }
