package tools_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// labRegistryHost is the name the lab registry plays; every tool reaches it
// through the lab's proxy, which resolves it to the lab origin.
const labRegistryHost = "registry.lab.example"

// labRegistry answers what each real tool asks of a registry or Git host,
// just enough for the request that shows its TLS outcome to succeed:
//
//	npm   GET /npm/lab-pkg                          a packument
//	pip   GET /simple/lab-pkg/                      a simple index page
//	git   GET /git/lab.git/info/refs                a smart-HTTP advertisement
//	cargo GET /cargo/index/config.json, .../lab-crate  a sparse index
//	go    GET /goproxy/lab.example/mod/@v/list      a module proxy's version list
func labRegistry() http.Handler {
	base := "https://" + labRegistryHost
	mux := http.NewServeMux()
	mux.HandleFunc("GET /npm/lab-pkg", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"name":      "lab-pkg",
			"dist-tags": map[string]string{"latest": "1.0.0"},
			"versions": map[string]any{"1.0.0": map[string]any{
				"name": "lab-pkg", "version": "1.0.0",
				"dist": map[string]string{"tarball": base + "/npm/lab-pkg/-/lab-pkg-1.0.0.tgz", "shasum": strings.Repeat("0", 40)},
			}},
			"time": map[string]string{"created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "1.0.0": "2026-01-01T00:00:00.000Z"},
		})
	})
	wheel := labWheel()
	sum := sha256.Sum256(wheel)
	const wheelName = "lab_pkg-1.0.0-py3-none-any.whl"
	mux.HandleFunc("GET /simple/lab-pkg/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<!DOCTYPE html><html><body><a href=\"%s/files/%s#sha256=%s\">%s</a></body></html>\n",
			base, wheelName, hex.EncodeToString(sum[:]), wheelName)
	})
	mux.HandleFunc("GET /files/"+wheelName, func(w http.ResponseWriter, _ *http.Request) {
		w.Write(wheel)
	})
	mux.HandleFunc("GET /git/lab.git/info/refs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("service") != "git-upload-pack" {
			http.Error(w, "dumb HTTP is not served", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		w.Header().Set("Cache-Control", "no-cache")
		const head = "4b825dc642cb6eb9a060e54bf8d69288fbee4904" // any object name will do for ls-remote
		io.WriteString(w, pktLine("# service=git-upload-pack\n")+"0000"+
			pktLine(head+" HEAD\x00symref=HEAD:refs/heads/main agent=mitmwatch-lab\n")+
			pktLine(head+" refs/heads/main\n")+"0000")
	})
	mux.HandleFunc("GET /cargo/index/config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"dl":"%s/cargo/dl","api":"%s/cargo"}`+"\n", base, base)
	})
	mux.HandleFunc("GET /cargo/index/la/b-/lab-crate", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"name":"lab-crate","vers":"1.0.0","deps":[],"cksum":"%s","features":{},"yanked":false}`+"\n", strings.Repeat("0", 64))
	})
	mux.HandleFunc("GET /goproxy/lab.example/mod/@v/list", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "v1.0.0\n")
	})
	mux.HandleFunc("GET /goproxy/lab.example/mod/@v/v1.0.0.info", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"Version":"v1.0.0","Time":"2026-01-01T00:00:00Z"}`+"\n")
	})
	mux.HandleFunc("GET /goproxy/lab.example/mod/@v/v1.0.0.mod", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "module lab.example/mod\n")
	})
	return mux
}

// pktLine frames s as one Git protocol packet line.
func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// labWheel is a minimal valid wheel of lab-pkg 1.0.0.
func labWheel() []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	files := [][2]string{
		{"lab_pkg/__init__.py", ""},
		{"lab_pkg-1.0.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: lab-pkg\nVersion: 1.0.0\n"},
		{"lab_pkg-1.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: mitmwatch-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	for _, f := range files {
		w, _ := z.Create(f[0])
		io.WriteString(w, f[1])
		sum := sha256.Sum256([]byte(f[1]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(f[1]))
	}
	record.WriteString("lab_pkg-1.0.0.dist-info/RECORD,,\n")
	w, _ := z.Create("lab_pkg-1.0.0.dist-info/RECORD")
	io.WriteString(w, record.String())
	z.Close()
	return b.Bytes()
}
