// Package mitmwatch detects TLS-intercepting middleboxes between this machine
// and the package registries and Git hosts its builds depend on.
//
// The root package only carries the default rules, embedded so that a bare
// binary with no file on disk still watches the usual hosts. It must import
// nothing from this module: package config depends on it.
package mitmwatch

import _ "embed"

// DefaultRules is the rules.yaml used when no other config is found. It is
// also the annotated reference for every field. Treat it as read-only.
//
//go:embed rules.yaml
var DefaultRules []byte
