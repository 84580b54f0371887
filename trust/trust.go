// Package trust builds the two certificate pools mitmwatch verifies every
// presented chain against: the public web PKI, and whatever this machine
// trusts. A chain that only the machine's store accepts is the mark of a
// locally installed interception CA, so the two must be built independently.
// It also reads every store file once for the rest of the process
// (Bundle): the audit and the build tools' stores read the same
// certificates. A check verifies against Roots, which parses a root only
// when a chain names it (Parse, once a process); the commands that verify
// against whole pools build them once. A check also takes the store files
// unchanged since the last one from that check's snapshot (UseSnapshot).
//
// The public roots come from the Mozilla bundle compiled into the binary,
// never from the operating system, so an inspection CA pushed into the OS
// store cannot make itself look public.
package trust

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// Specs that name a built-in store rather than a PEM bundle path.
const (
	Mozilla = "mozilla" // the Mozilla root program, as compiled into the binary
	System  = "system"  // this machine's store (SSL_CERT_FILE, SSL_CERT_DIR honoured)
)

// maxPEMSize bounds a bundle read so a path to a device or a huge file fails
// fast instead of exhausting memory. The largest OS bundles are under 1 MiB.
const maxPEMSize = 16 << 20

// mozillaPool builds the whole Mozilla pool once, for the commands that
// verify against the whole store (mozillaIndex's Pool). The cached pool
// is never modified; callers get clones.
var mozillaPool = sync.OnceValues(func() (*x509.CertPool, error) {
	r, err := mozillaIndex()
	if err != nil {
		return nil, err
	}
	return r.Pool(), nil
})

// PublicRoots returns the pool that stands for the public web PKI: the
// Mozilla bundle for "mozilla", else the certificates of the PEM bundle at
// spec (for a lab, or an organisation that curates its own public set).
// The pool is the caller's own copy.
func PublicRoots(spec string) (*x509.CertPool, error) {
	if spec == Mozilla {
		pool, err := mozillaPool()
		if err != nil {
			return nil, err
		}
		return pool.Clone(), nil
	}
	pool, _, err := LoadPEM(spec)
	return pool, err
}

// SystemRoots returns the pool this machine's TLS clients trust: the OS store
// for "system", else the certificates of the PEM bundle at spec (to judge
// another machine's store, or in tests).
func SystemRoots(spec string) (*x509.CertPool, error) {
	if spec == System {
		certs, ok, err := systemCerts()
		if !ok {
			pool, err := x509.SystemCertPool()
			if err != nil {
				return nil, fmt.Errorf("trust: loading the system store: %w", err)
			}
			return pool, nil
		}
		if err != nil {
			return nil, fmt.Errorf("trust: loading the system store: %w", err)
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		return pool, nil
	}
	pool, _, err := LoadPEM(spec)
	return pool, err
}

// LoadPEM reads a bundle of PEM certificates, returning them both as a pool
// and as a list (for reporting what a store holds), with LoadCerts' errors.
func LoadPEM(path string) (*x509.CertPool, []*x509.Certificate, error) {
	certs, err := LoadCerts(path)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, certs, nil
}

// LoadCerts reads a bundle of PEM certificates, for a caller that needs no
// pool (adding to one hashes and indexes every certificate). Blocks other
// than CERTIFICATE are skipped, as in OS bundles that carry comments or
// keys; a certificate that does not parse or a bundle with none is an
// error, because a silently empty store would make every host look
// intercepted.
func LoadCerts(path string) ([]*x509.Certificate, error) {
	blocks, err := ReadBundle(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := b.Cert()
		if err != nil {
			return nil, fmt.Errorf("PEM bundle %s: certificate %d: %w", path, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("PEM bundle %s: no certificates found", path)
	}
	return certs, nil
}

// readRegular reads a regular file of bounded size. Errors name the path
// once and keep the fs error for errors.Is.
func readRegular(path string) ([]byte, error) {
	// Stat before opening: opening a FIFO would block.
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("PEM bundle %s: %w", path, unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("PEM bundle %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("PEM bundle %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	// Sized by the stat: io.ReadAll's doubling would copy a bundle of
	// hundreds of kilobytes a dozen times.
	buf := bytes.NewBuffer(make([]byte, 0, min(info.Size(), maxPEMSize)+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(f, maxPEMSize+1))
	data := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("PEM bundle %s: %w", path, unwrapPath(err))
	}
	if len(data) > maxPEMSize {
		return nil, fmt.Errorf("PEM bundle %s: larger than %d MiB", path, maxPEMSize>>20)
	}
	return data, nil
}

// unwrapPath drops the *fs.PathError layer, whose message repeats the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
