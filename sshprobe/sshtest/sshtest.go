// Package sshtest serves SSH on loopback for tests and the demo: a server
// with a host key of the test's choosing (the real host, or an interceptor
// answering with its own), and a port that answers with whatever bytes a
// filter would send instead of SSH. It is test support, kept out of the
// mitmwatch binary.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Key is a host key.
type Key struct {
	Signer ssh.Signer
}

// NewKey generates an Ed25519 host key.
func NewKey() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("sshtest: generating a host key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("sshtest: %w", err)
	}
	return Key{Signer: s}, nil
}

// Fingerprint is the key's SHA-256 fingerprint, as pinned in rules.yaml.
func (k Key) Fingerprint() detector.SSHFingerprint {
	return sha256.Sum256(k.Signer.PublicKey().Marshal())
}

// Server accepts connections on a loopback port until closed.
type Server struct {
	l    net.Listener
	wg   sync.WaitGroup
	once sync.Once

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// Addr is the server's "ip:port".
func (s *Server) Addr() string { return s.l.Addr().String() }

// Port is the server's port.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// Close stops accepting, closes the connections being served and waits
// for their handlers.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.l.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

// NewServer serves SSH with key as its host key, banner as its software
// version ("OpenSSH_9.6"). No client is ever authenticated.
func NewServer(key Key, version string) (*Server, error) {
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-" + version,
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			return nil, errors.New("no")
		},
	}
	cfg.AddHostKey(key.Signer)
	return serve(func(c net.Conn) {
		sc, _, _, err := ssh.NewServerConn(c, cfg)
		if err == nil {
			sc.Close()
		}
	})
}

// NewRaw answers every connection with data and closes it: a filter
// speaking HTTP, a TLS-only box, a banner of another protocol. Data is
// sent at once, before the client says anything, as a web filter answering
// the port does once it reads a line.
func NewRaw(data []byte) (*Server, error) {
	return serve(func(c net.Conn) {
		c.Write(data)
		buf := make([]byte, 512)
		c.Read(buf) // let the client's version arrive before closing
	})
}

// NewSilent accepts connections and never answers: a box that holds the
// port open and drops what comes.
func NewSilent() (*Server, error) {
	return serve(func(c net.Conn) {
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
}

// ClosedPort returns a loopback address nothing listens on.
func ClosedPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("sshtest: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

func serve(handle func(net.Conn)) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sshtest: %w", err)
	}
	s := &Server{l: l, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	return s, nil
}
