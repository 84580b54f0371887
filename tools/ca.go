package tools

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/mitmwatch/mitmwatch/atomicfile"
	"github.com/mitmwatch/mitmwatch/detector"
)

// CAs returns the certificates the predictions' fixes install, once each,
// in the order they are first named: what --write-ca writes.
func CAs(ps []Prediction) []*x509.Certificate {
	var out []*x509.Certificate
	seen := map[detector.SPKI]bool{}
	for _, p := range ps {
		if p.CA == nil {
			continue
		}
		if k := detector.SPKIOf(p.CA); !seen[k] {
			seen[k] = true
			out = append(out, p.CA)
		}
	}
	return out
}

// WriteCAs writes certificates as one PEM bundle, atomically, readable by
// every tool (they are public certificates). It refuses to write an empty
// bundle, which a tool would take as "trust nothing".
func WriteCAs(path string, cas []*x509.Certificate) error {
	if len(cas) == 0 {
		return errors.New("no CA to write: no fix installs one (the chains verify, or nothing on this machine vouches for their CA)")
	}
	var data []byte
	for _, c := range cas {
		// The subject comes from the network: quoted, it cannot end the
		// comment line and smuggle a certificate into the bundle.
		data = append(data, fmt.Sprintf("# %q\n# SPKI sha256 %s\n", c.Subject.String(), detector.SPKIOf(c))...)
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("writing the CA bundle: %w", err)
	}
	return nil
}
