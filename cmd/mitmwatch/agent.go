//go:build !lean

package main

import (
	"context"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
)

// registerAgent registers the commands that keep running beside the build
// (the service, capture) or read captures. They link what check never
// needs (the Prometheus client and exporter toolkit, packet capture), so
// the release's mitmwatch, built with -tags lean, hands them to
// mitmwatch-agent, this build (lean.go).
func registerAgent(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	registerPcap(app, ctx, e, set)
	registerSniff(app, ctx, e, set)
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)
	registerRun(app, ctx, e, set, logCfg)
}

// handOver is lean.go's: this build runs every command itself.
func handOver([]string, env) (int, bool) { return 0, false }
