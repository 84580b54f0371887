package exporter

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// NewBuildInfo returns the mitmwatch_build_info gauge, always 1, labelled
// with the version and revision the binary was built from (stamped with
// -ldflags in release builds, which record no VCS data) and the Go version.
//
// client_golang's collectors/version reads the version from package
// variables of prometheus/common/version, which mitmwatch would have to set
// as global state; this gauge takes the version as an argument instead.
func NewBuildInfo(version, revision string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mitmwatch_build_info",
		Help: "A metric with a constant 1 value labelled by the version, VCS revision and Go version mitmwatch was built from.",
		ConstLabels: prometheus.Labels{
			"version":   labelValue(version),
			"revision":  labelValue(revision),
			"goversion": runtime.Version(),
		},
	})
	g.Set(1)
	return g
}
