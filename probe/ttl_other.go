//go:build !unix

package probe

import "net"

func setTTL(net.Conn, bool, int) (func(), error) { return nil, errNoTTL }
