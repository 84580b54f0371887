package ranges

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEmbedded checks the shipped snapshot: every provider, its official
// source, never fetched, and no ranges (none were taken from an
// authoritative copy when it was built).
func TestEmbedded(t *testing.T) {
	s := Embedded()
	if s.Version != Version {
		t.Errorf("version %d, want %d", s.Version, Version)
	}
	var names []string
	for name, p := range s.Providers {
		names = append(names, name)
		if want := strings.Join(Sources()[name], ", "); p.Source != want {
			t.Errorf("%s: source %q, want %q", name, p.Source, want)
		}
		if !p.Fetched.IsZero() || len(p.Prefixes) != 0 || len(p.Services) != 0 {
			t.Errorf("%s: shipped with data (fetched %v, %d prefixes); only an update may add ranges", name, p.Fetched, len(p.Prefixes))
		}
	}
	slices.Sort(names)
	if want := []string{"aws", "cloudflare", "fastly", "github", "google"}; !slices.Equal(names, want) {
		t.Errorf("providers %v, want %v", names, want)
	}
	if _, err := decode(embedded); err != nil {
		t.Fatalf("snapshot.json does not decode: %v", err)
	}
}

// TestEmbeddedIsSaveOutput keeps snapshot.json in the exact form Save
// writes, so a snapshot saved by an update can replace it as it is.
func TestEmbeddedIsSaveOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot.json")
	if err := Embedded().Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, embedded) {
		t.Errorf("snapshot.json differs from what Save writes:\n%s", cmp.Diff(string(embedded), string(got)))
	}
}

func TestEmbeddedIsACopy(t *testing.T) {
	a := Embedded()
	a.Providers["github"] = Provider{Prefixes: pfx("192.0.2.0/24")}
	if _, err := Embedded().Resolve("provider:github"); err == nil {
		t.Error("changing one Embedded() result changed the next one")
	}
}

func sampleSnapshot(t *testing.T) Snapshot {
	t.Helper()
	s := Snapshot{Version: Version, Providers: map[string]Provider{}}
	for name := range sampleFiles {
		p, err := Parse(name, readSamples(t, name))
		if err != nil {
			t.Fatal(err)
		}
		s.Providers[name] = p
	}
	return s
}

func TestResolve(t *testing.T) {
	full := sampleSnapshot(t)
	empty := Embedded()
	tests := []struct {
		snap    Snapshot
		ref     string
		want    []netip.Prefix
		wantErr string
	}{
		{snap: full, ref: "provider:github", want: sampleWant["github"].Prefixes},
		{snap: full, ref: "provider:github/packages", want: pfx("192.0.2.64/28", "198.51.100.0/26")},
		{snap: full, ref: "provider:aws", want: sampleWant["aws"].Prefixes},
		{snap: full, ref: "provider:aws/CLOUDFRONT", want: pfx("198.51.100.0/24", "2001:db8:1000::/40")},
		{snap: full, ref: "provider:cloudflare", want: sampleWant["cloudflare"].Prefixes},
		{snap: full, ref: "github", wantErr: `ranges: "github": want provider:NAME or provider:NAME/SERVICE`},
		{snap: full, ref: "provider:azure", wantErr: `ranges: "provider:azure": unknown provider "azure" (known: aws, cloudflare, fastly, github, google)`},
		{snap: full, ref: "provider:", wantErr: `ranges: "provider:": unknown provider "" (known: aws, cloudflare, fastly, github, google)`},
		{snap: full, ref: "provider:aws/cloudfront", wantErr: `ranges: "provider:aws/cloudfront": provider aws has no service "cloudfront" (known: AMAZON, CLOUDFRONT, EC2, S3)`},
		{snap: full, ref: "provider:aws/", wantErr: `ranges: "provider:aws/": provider aws has no service "" (known: AMAZON, CLOUDFRONT, EC2, S3)`},
		{snap: full, ref: "provider:cloudflare/CDN", wantErr: `ranges: "provider:cloudflare/CDN": provider cloudflare has no services`},
		{snap: empty, ref: "provider:github", wantErr: "ranges: \"provider:github\": provider github has no ranges in the snapshot; run `mitmwatch ranges update`"},
		{snap: empty, ref: "provider:aws/CLOUDFRONT", wantErr: "ranges: \"provider:aws/CLOUDFRONT\": provider aws has no ranges in the snapshot; run `mitmwatch ranges update`"},
		{snap: Snapshot{}, ref: "provider:github", wantErr: `ranges: "provider:github": unknown provider "github" (known: none)`},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := tt.snap.Resolve(tt.ref)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve = %v, want error", got)
				}
				checkErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpPrefix); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveReturnsACopy(t *testing.T) {
	s := sampleSnapshot(t)
	for _, ref := range []string{"provider:fastly", "provider:aws/S3"} {
		got, err := s.Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(got)
		got[0] = netip.MustParsePrefix("0.0.0.0/0")
		again, _ := s.Resolve(ref)
		if diff := cmp.Diff(want, again, cmpPrefix); diff != "" {
			t.Errorf("%s: changing the result changed the snapshot (-want +got):\n%s", ref, diff)
		}
	}
}
