package report

import (
	"fmt"

	"github.com/mitmwatch/mitmwatch/detector"
)

// integrityColumns fills the table's TLS and ISSUER columns for a target
// that does not speak TLS: for SSH, the server's software and its host
// key; for a checksum database, the tree it served and its signature.
// Both come from the network: the caller escapes them.
func integrityColumns(o detector.Observation) (proto, signer string) {
	proto, signer = "-", "-"
	if o.Failure != detector.FailureNone {
		proto = string(o.Failure)
	}
	switch {
	case o.SSH != nil:
		if o.SSH.HostKey != nil {
			proto = "ssh"
			signer = o.SSH.HostKey.Type + " " + o.SSH.HostKey.SHA256.String()
		}
	case o.SumDB != nil:
		if t := o.SumDB.Tree; t != nil {
			proto = fmt.Sprintf("tree %d", t.Size)
		}
		if o.SumDB.Signature != "" {
			signer = "note " + string(o.SumDB.Signature)
		}
		if o.SumDB.ViaProxy {
			signer += " (via module proxy)"
		}
	}
	return proto, signer
}
