package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// revision and buildDate are stamped at build time like version; `make
// release` sets all three:
//
//	-ldflags "-X main.version=v1.2.0 -X main.revision=<commit> -X main.buildDate=2025-11-28T15:13:00Z"
//
// buildDate is the commit's time (SOURCE_DATE_EPOCH), not the clock's, so
// that two builds of one commit are the same bytes. Left empty, they come
// from what the Go toolchain recorded in the binary (see readBuild).
var (
	revision  string
	buildDate string
)

// build says which mitmwatch this is: what `mitmwatch version` prints and
// mitmwatch_build_info exports.
type build struct {
	Version   string // v1.2.0, a Go pseudo-version, or "dev"
	Revision  string // the commit, or "unknown"
	Date      string // the commit's time in RFC 3339 (UTC), or "unknown"
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// currentBuild describes this binary.
func currentBuild() build {
	bi, _ := debug.ReadBuildInfo()
	return readBuild(version, revision, buildDate, bi)
}

// readBuild prefers the values stamped with -ldflags and falls back to what
// Go recorded in bi (nil when it recorded nothing): the module version that
// `go install …/cmd/mitmwatch@v1.2.0` records, or the pseudo-version, commit
// and commit time a build in a Git checkout records (-buildvcs).
func readBuild(version, revision, date string, bi *debug.BuildInfo) build {
	b := build{
		Version:   version,
		Revision:  revision,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi != nil {
		if b.Version == "" || b.Version == "dev" {
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				b.Version = v
			}
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Revision == "":
				b.Revision = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			}
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
	}
	b.Version = cmp.Or(b.Version, "dev")
	b.Revision = cmp.Or(b.Revision, "unknown")
	b.Date = cmp.Or(b.Date, "unknown")
	return b
}

// String is the text of `mitmwatch version`: the first line alone is
// "mitmwatch VERSION", for scripts that read only that.
func (b build) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "mitmwatch %s\n", b.Version)
	fmt.Fprintf(&s, "  revision:   %s\n", b.Revision)
	fmt.Fprintf(&s, "  build date: %s\n", b.Date)
	fmt.Fprintf(&s, "  go version: %s\n", b.GoVersion)
	fmt.Fprintf(&s, "  platform:   %s\n", b.Platform)
	return s.String()
}
