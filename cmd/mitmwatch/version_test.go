package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadBuild(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/mitmwatch/mitmwatch", Version: "v0.0.0-20251128151300-53b636f1a2b3+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "53b636f1a2b3c4d5e6f708192a3b4c5d6e7f8091"},
			{Key: "vcs.time", Value: "2025-11-28T15:13:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, c := range []struct {
		name                    string
		version, revision, date string
		bi                      *debug.BuildInfo
		want                    build
	}{
		{
			name:    "make release stamps everything",
			version: "v1.2.0", revision: "0123456789abcdef0123456789abcdef01234567", date: "2025-11-28T15:13:00Z",
			bi:   vcs,
			want: build{"v1.2.0", "0123456789abcdef0123456789abcdef01234567", "2025-11-28T15:13:00Z", "go1.26.8", platform},
		},
		{
			name:    "go build in a checkout records the commit",
			version: "dev", bi: vcs,
			want: build{"v0.0.0-20251128151300-53b636f1a2b3+dirty", "53b636f1a2b3c4d5e6f708192a3b4c5d6e7f8091", "2025-11-28T15:13:00Z", "go1.26.8", platform},
		},
		{
			name:    "go install at a version records only the module version",
			version: "dev",
			bi:      &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			want:    build{"v1.2.0", "unknown", "unknown", "go1.26.8", platform},
		},
		{
			name:    "go build without VCS information",
			version: "dev",
			bi:      &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want:    build{"dev", "unknown", "unknown", "go1.26.8", platform},
		},
		{
			name:    "no build information at all",
			version: "dev",
			want:    build{"dev", "unknown", "unknown", runtime.Version(), platform},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := readBuild(c.version, c.revision, c.date, c.bi)
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("readBuild (-want +got):\n%s", d)
			}
		})
	}
}

func TestBuildString(t *testing.T) {
	b := build{"v1.2.0", "0123456789abcdef0123456789abcdef01234567", "2025-11-28T15:13:00Z", "go1.26.8", "linux/amd64"}
	want := `mitmwatch v1.2.0
  revision:   0123456789abcdef0123456789abcdef01234567
  build date: 2025-11-28T15:13:00Z
  go version: go1.26.8
  platform:   linux/amd64
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("String (-want +got):\n%s", d)
	}
	if first, _, _ := strings.Cut(b.String(), "\n"); first != "mitmwatch v1.2.0" {
		t.Errorf("first line %q: scripts read the version from it", first)
	}
}
