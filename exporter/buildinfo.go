package exporter

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// NewBuildInfo returns the mitmwatch_build_info gauge, always 1, labelled
// with the version (main.version, set with -ldflags), the VCS revision Go
// recorded in the binary and the Go version.
//
// client_golang's collectors/version reads the version from package
// variables of prometheus/common/version, which mitmwatch would have to set
// as global state; this gauge takes the version as an argument instead.
func NewBuildInfo(version string) prometheus.Collector {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mitmwatch_build_info",
		Help: "A metric with a constant 1 value labelled by the version, VCS revision and Go version mitmwatch was built from.",
		ConstLabels: prometheus.Labels{
			"version":   labelValue(version),
			"revision":  revision,
			"goversion": runtime.Version(),
		},
	})
	g.Set(1)
	return g
}
