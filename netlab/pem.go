//go:build linux

package netlab

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"strconv"
)

// WriteChains writes chains as PEM blocks, each certificate with a "Host"
// header naming the host it was presented for and a "Position" header (0 is
// the leaf), in the order of hosts. When root is not nil and not the last
// certificate presented, it follows with Position "root": the CA a trust
// store would complete the chain with. fingerprints/testdata keeps the forged
// chains of real products in this form.
func WriteChains(w io.Writer, chains map[string][]*x509.Certificate, hosts []string, root *x509.Certificate) error {
	for _, h := range hosts {
		chain, ok := chains[h]
		if !ok {
			continue
		}
		for i, c := range chain {
			blk := &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw,
				Headers: map[string]string{"Host": h, "Position": strconv.Itoa(i)}}
			if err := pem.Encode(w, blk); err != nil {
				return err
			}
		}
		if root != nil && len(chain) > 0 && !chain[len(chain)-1].Equal(root) {
			blk := &pem.Block{Type: "CERTIFICATE", Bytes: root.Raw, Headers: map[string]string{"Host": h, "Position": "root"}}
			if err := pem.Encode(w, blk); err != nil {
				return err
			}
		}
	}
	return nil
}
