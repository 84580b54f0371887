// Command barehandshakes is what `mitmwatch check` is measured against in
// bench/check.sh: what any small Go client does to reach every host at
// once — resolve through the system's resolver, connect, and complete a
// TLS handshake verified against the system's roots — and nothing else.
// It links only the standard library, so its start-up is a Go program's,
// not a benchmark's. Its arguments are host:port; it prints each
// handshake's time in milliseconds, as JSON.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		// Quoted: a handshake's error can carry a certificate's names.
		fmt.Fprintf(os.Stderr, "barehandshakes: %q\n", err.Error())
		os.Exit(1)
	}
}

func run(w io.Writer, endpoints []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms := make([]float64, len(endpoints))
	errs := make([]error, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() {
			start := time.Now()
			d := tls.Dialer{Config: &tls.Config{NextProtos: []string{"h2", "http/1.1"}}}
			c, err := d.DialContext(ctx, "tcp", ep)
			if err != nil {
				errs[i] = err
				return
			}
			ms[i] = float64(time.Since(start).Microseconds()) / 1000
			c.Close()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(ms)
}
