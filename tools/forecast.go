package tools

import (
	"sync"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Forecast is one tool and its predicted outcome for each judged target it
// fetches from.
type Forecast struct {
	Tool        Tool
	Predictions []Prediction
}

// Relevant reports whether a tool belongs in a report: it is installed, or
// its configuration names hosts or switches verification off.
func (t Tool) Relevant() bool {
	return t.Installed() || len(t.Hosts) > 0 || t.Verify != nil || len(t.Overrides) > 0
}

// PredictAll predicts, for each relevant tool, every judged target it
// fetches from, in the order of the results. The tools are predicted at
// once: each is a few chain verifications per target, on the path between
// the round's last answer and the report.
func PredictAll(ts []Tool, results []detector.Result, c Context) []Forecast {
	var relevant []Tool
	for _, t := range ts {
		if t.Relevant() {
			relevant = append(relevant, t)
		}
	}
	out := make([]Forecast, len(relevant))
	var wg sync.WaitGroup
	for i, t := range relevant {
		wg.Go(func() { out[i] = predictTool(t, results, c) })
	}
	wg.Wait()
	return out
}

// predictTool is t's forecast over the results.
func predictTool(t Tool, results []detector.Result, c Context) Forecast {
	f := Forecast{Tool: t}
	for _, r := range results {
		if r.Obs.Protocol != detector.ProtocolTLS {
			continue // an SSH server or the checksum database: no tool's TLS
		}
		if h, ok := t.Uses(r.Obs.Host, r.Obs.Port); ok {
			if h.Source == "" {
				h.Source = r.Source
			}
			f.Predictions = append(f.Predictions, Predict(t, h, r, c))
		}
	}
	return f
}

// Predictions flattens forecasts, for CAs.
func Predictions(fs []Forecast) []Prediction {
	var out []Prediction
	for _, f := range fs {
		out = append(out, f.Predictions...)
	}
	return out
}
