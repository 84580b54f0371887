package main

import (
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{9, 1, 4, 7, 2}, 4},
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("median reordered its input: %v", tc.in)
			}
		}
	}
}

// TestAllOK: the benchmark refuses to report figures of a round that was
// not clean, or that lacks targets.
func TestAllOK(t *testing.T) {
	doc := func(verdicts ...string) []byte {
		var b strings.Builder
		b.WriteString(`{"schema_version":1,"targets":[`)
		for i, v := range verdicts {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"host":"h` + string(rune('a'+i)) + `.lab.example","verdict":"` + v + `"}`)
		}
		b.WriteString("]}")
		return []byte(b.String())
	}
	clean := make([]string, len(hosts))
	for i := range clean {
		clean[i] = "ok"
	}
	if err := allOK(doc(clean...)); err != nil {
		t.Errorf("clean round refused: %v", err)
	}
	dirty := append([]string(nil), clean...)
	dirty[3] = "intercepted"
	if err := allOK(doc(dirty...)); err == nil || !strings.Contains(err.Error(), "intercepted") {
		t.Errorf("intercepted target accepted: %v", err)
	}
	if err := allOK(doc("ok")); err == nil {
		t.Error("a round with one target accepted")
	}
	if err := allOK([]byte("not json")); err == nil {
		t.Error("garbage accepted")
	}
}
