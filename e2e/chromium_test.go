package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/mitmwatch/mitmwatch/lab"
)

// hostileCN is the common name of an interceptor's CA that hopes the
// status page pastes it into the HTML unescaped.
const hostileCN = "<script>alert(1)</script>"

// The screenshots are left here for people to look at.
const (
	screenshotCopy       = "/tmp/mitmwatch-status.png"
	targetScreenshotCopy = "/tmp/mitmwatch-target.png"
)

// TestStatusPageInChromium renders the daemon's status page in headless
// Chromium: one row per target with its verdict and product, problems
// first and ok last, names never broken at 1280 px, the hostile issuer
// name shown as text and never as markup (on the target pages too), and
// screenshots that are real pictures with the verdict colours in them.
// Then it restarts the daemon with one target moved behind the hostile
// interceptor: that target's page shows the change and the verdict it had
// before the restart.
func TestStatusPageInChromium(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	bin := mitmwatchBinary(t)

	e := newLab(t)
	fortinet := newForger(t, e, e.PKI.ProductRoot)
	hostileCA := newRootCA(t, pkix.Name{CommonName: hostileCN, Organization: []string{`"><img src=x onerror=alert(2)>`}})
	hostile := newForger(t, e, hostileCA)
	dir := t.TempDir()
	// The hostile root is "installed" too, so its leaves verify against
	// the system store: an interception by an unnamed product.
	rules := writeRules(t, dir, e, hostileCA.PEM,
		labTarget{"github.com", e.Origin.Addr()},
		labTarget{"pypi.org", fortinet.Addr()},
		labTarget{"ghcr.io", hostile.Addr()})
	d := startDaemon(t, bin, rules, filepath.Join(dir, "state"))
	page := d.base + "/"

	doc := renderHostile(t, chromium, page)
	rows := tableRows(t, doc)
	var order []string
	for _, r := range rows {
		order = append(order, r["Target"])
	}
	// Problems first (both intercepted: by name), ok last.
	if want := []string{"ghcr.io:443", "pypi.org:443", "github.com:443"}; strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("rows in the order %v, want %v", order, want)
	}
	if counts := text(findClass(t, doc, "counts")); counts != "2 intercepted 1 ok" {
		t.Errorf("the header tallies %q", counts)
	}
	want := map[string]struct{ verdict, product, issuer string }{
		"github.com:443": {"ok", "", "Lab Public TLS CA 2026"},
		"pypi.org:443":   {"intercepted", "Fortinet", "FortiGate CA"},
		"ghcr.io:443":    {"intercepted", "", hostileCN},
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want one per target (%d): %v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		w, ok := want[r["Target"]]
		if !ok {
			t.Errorf("row for an unknown target: %v", r)
			continue
		}
		if r["Verdict"] != w.verdict || r["Product"] != w.product || r["Issuer"] != w.issuer {
			t.Errorf("row %v, want verdict %q, product %q, issuer %q", r, w.verdict, w.product, w.issuer)
		}
		if r["Last probe"] == "never" || r["Last probe"] == "" {
			t.Errorf("row %v: never probed", r)
		}
	}

	checkNoBreaks(t, chromium, d.base+"/")

	shot := filepath.Join(t.TempDir(), "page.png")
	runChromium(t, chromium, "--screenshot="+shot, "--window-size=1280,800", "--hide-scrollbars", page)
	checkScreenshot(t, shot, screenshotCopy, "ok green", "detected red")

	for _, host := range []string{"ghcr.io:443", "pypi.org:443", "github.com:443"} {
		tdoc := renderHostile(t, chromium, d.base+"/target/"+host)
		if len(findAll(tdoc, atom.Table)) < 2 {
			t.Errorf("the page of %s lacks its tables (findings, chain)", host)
		}
	}
	tdoc := renderHostile(t, chromium, d.base+"/target/ghcr.io:443")
	if dom := render(tdoc); !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the target page does not show the hostile issuer in its chain:\n%s", dom)
	}
	tshot := filepath.Join(t.TempDir(), "target.png")
	runChromium(t, chromium, "--screenshot="+tshot, "--window-size=1280,800", "--hide-scrollbars", d.base+"/target/ghcr.io:443")
	checkScreenshot(t, tshot, targetScreenshotCopy, "detected red")

	// Restart with github.com behind the hostile interceptor: its history
	// keeps the first verdict (from before the restart) and adds the change.
	d.stop(t)
	writeRules(t, dir, e, hostileCA.PEM,
		labTarget{"github.com", hostile.Addr()},
		labTarget{"pypi.org", fortinet.Addr()},
		labTarget{"ghcr.io", hostile.Addr()})
	d = startDaemon(t, bin, rules, filepath.Join(dir, "state"))
	var changes [][]string
	eventually(t, 20*time.Second, "github.com's page shows the change", func() (bool, string) {
		hdoc := renderHostile(t, chromium, d.base+"/target/github.com:443")
		changes = nil
		for _, tr := range findAll(hdoc, atom.Tr) {
			if attr(tr, "class") == "change" {
				var cells []string
				for _, td := range findAll(tr, atom.Td) {
					cells = append(cells, text(td))
				}
				changes = append(changes, cells[1:])
			}
		}
		return len(changes) == 2, fmt.Sprint(changes)
	})
	if fmt.Sprint(changes) != "[[ok intercepted] [first verdict ok]]" {
		t.Errorf("github.com's history after a change and a restart: %v", changes)
	}
	if n := len(findAll(renderHostile(t, chromium, d.base+"/"), atom.Svg)); n < 3 {
		t.Errorf("%d verdict strips on the status page after the restart, want one per target", n)
	}
}

// renderHostile renders url in Chromium and checks that nothing a hostile
// certificate said became markup.
func renderHostile(t *testing.T, chromium, url string) *html.Node {
	t.Helper()
	dom := runChromium(t, chromium, "--dump-dom", "--window-size=1280,800", url)
	if !strings.Contains(dom, "<html") {
		// Chromium exits 0 when the page failed to load, and prints nothing.
		t.Fatalf("chromium rendered no page at %s: %q", url, dom)
	}
	doc, err := html.Parse(strings.NewReader(dom))
	must(t, err)
	if n := findAll(doc, atom.Script); len(n) > 0 {
		t.Errorf("%s rendered with %d <script> elements; the hostile issuer was not escaped:\n%s", url, len(n), dom)
	}
	if n := findAll(doc, atom.Img); len(n) > 0 {
		t.Errorf("%s rendered with %d <img> elements; the hostile organisation was not escaped", url, len(n))
	}
	return doc
}

// noBreaksScript counts the line boxes of every target name on the page
// and writes the names on more than one line into <body data-broken>.
const noBreaksScript = `<script>
var broken = [];
document.querySelectorAll("td.name a").forEach(function (a) {
  if (a.getClientRects().length !== 1) { broken.push(a.textContent); }
});
document.body.setAttribute("data-broken", JSON.stringify(broken));
document.body.setAttribute("data-names", String(document.querySelectorAll("td.name a").length));
</script>`

// checkNoBreaks lays the status page out at 1280 px and checks that no
// target name wraps. The page has no script and its CSP allows none, so
// the test serves the daemon's own HTML and CSS from a proxy of its own
// that drops the CSP and appends a script measuring the layout.
func checkNoBreaks(t *testing.T, chromium, url string) {
	t.Helper()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, body, err := get(url)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, strings.Replace(body, "</body>", noBreaksScript+"</body>", 1))
	}))
	defer proxy.Close()
	doc, err := html.Parse(strings.NewReader(runChromium(t, chromium, "--dump-dom", "--window-size=1280,800", proxy.URL)))
	must(t, err)
	body := findAll(doc, atom.Body)
	if len(body) != 1 || attr(body[0], "data-names") == "" || attr(body[0], "data-names") == "0" {
		t.Fatalf("the layout was not measured")
	}
	if b := attr(body[0], "data-broken"); b != "[]" {
		t.Errorf("target names broken across lines at 1280 px: %s", b)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// findClass is the first element with the class.
func findClass(t *testing.T, doc *html.Node, class string) *html.Node {
	t.Helper()
	for d := range doc.Descendants() {
		if d.Type == html.ElementNode && slices.Contains(strings.Fields(attr(d, "class")), class) {
			return d
		}
	}
	t.Fatalf("no element of class %q", class)
	return nil
}

func render(n *html.Node) string {
	var b strings.Builder
	html.Render(&b, n)
	return b.String()
}

// newRootCA makes a self-signed CA the lab's forgers can sign with.
func newRootCA(t *testing.T, subject pkix.Name) *lab.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return &lab.CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// runChromium runs headless Chromium once with a profile of its own and
// returns what it printed. Chromium can hang, and its helper processes can
// outlive it holding its output open: it runs in a process group of its
// own, bounded in time, and the whole group is killed when it is done.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--no-proxy-server", "--disable-extensions",
		// No name resolves: Chromium reaches the daemon's loopback address
		// and nothing else.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + filepath.Join(home, "profile"),
	}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	must(t, cmd.Start())
	err := cmd.Wait()
	killGroup(t, cmd.Process.Pid)
	if err != nil {
		t.Fatalf("chromium %s: %v (context: %v)\n%s", strings.Join(args, " "), err, ctx.Err(), tail(stderr.String(), 4000))
	}
	return stdout.String()
}

// killGroup ends what is left of the process group Chromium led and waits,
// bounded, until it is gone, so that its profile directory can be removed.
func killGroup(t *testing.T, pgid int) {
	t.Helper()
	if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
		return
	}
	eventually(t, 10*time.Second, "chromium's helper processes exit", func() (bool, string) {
		return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH), "still running"
	})
}

func findAll(n *html.Node, a atom.Atom) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.DataAtom == a {
			out = append(out, d)
		}
	}
	return out
}

// tableRows reads the status table, the page's first: one map per body
// row, keyed by the column headers, with each cell's text.
func tableRows(t *testing.T, doc *html.Node) []map[string]string {
	t.Helper()
	tables := findAll(doc, atom.Table)
	if len(tables) == 0 {
		t.Fatal("no table on the page")
	}
	var headers []string
	for _, th := range findAll(tables[0], atom.Th) {
		headers = append(headers, text(th))
	}
	var rows []map[string]string
	for _, body := range findAll(tables[0], atom.Tbody) {
		for _, tr := range findAll(body, atom.Tr) {
			cells := findAll(tr, atom.Td)
			if len(cells) != len(headers) {
				t.Fatalf("row with %d cells under %d headers %v", len(cells), len(headers), headers)
			}
			row := map[string]string{}
			for i, td := range cells {
				row[headers[i]] = text(td)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// text is a node's text with whitespace runs made one space; a <br> counts
// as a space.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		switch {
		case d.Type == html.TextNode:
			b.WriteString(d.Data)
		case d.Type == html.ElementNode && d.DataAtom == atom.Br:
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// verdictColours are the page's CSS: .ok { background: #d9f2d9 },
// .detected { background: #f8d0d0 }.
var verdictColours = map[string]color.RGBA{"ok green": {0xd9, 0xf2, 0xd9, 0xff}, "detected red": {0xf8, 0xd0, 0xd0, 0xff}}

// checkScreenshot decodes the PNG, checks it has the window's size and
// shows the verdict colours named (a cell's worth of each), and leaves a
// copy at keep for people to look at.
func checkScreenshot(t *testing.T, path, keep string, colours ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s (%d bytes): %v", path, len(data), err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Errorf("screenshot is %dx%d, want 1280x800", b.Dx(), b.Dy())
	}
	if len(data) < 10_000 {
		t.Errorf("screenshot is only %d bytes: a blank page?", len(data))
	}
	for _, name := range colours {
		if n := countColour(img, verdictColours[name]); n < 500 {
			t.Errorf("screenshot has %d pixels of the %s row colour, want a cell's worth", n, name)
		}
	}
	if err := os.WriteFile(keep, data, 0o644); err != nil {
		t.Logf("could not leave a copy of the screenshot: %v", err)
	} else {
		t.Logf("screenshot: %s", keep)
	}
}

// countColour counts the pixels within a small distance of c, to allow for
// colour management.
func countColour(img image.Image, c color.RGBA) int {
	near := func(a uint32, b uint8) bool {
		d := int(a>>8) - int(b)
		return d >= -3 && d <= 3
	}
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, c.R) && near(g, c.G) && near(bl, c.B) {
				n++
			}
		}
	}
	return n
}
