package sumdb_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
	"github.com/mitmwatch/mitmwatch/trust"
)

const (
	dbName    = "sum.lab.example"
	proxyName = "proxy.lab.example"
)

// world is a lab network: the database's and the proxy's names lead to
// loopback servers with certificates from the lab's public CA.
type world struct {
	t      *testing.T
	pki    *lab.PKI
	routes map[string]string // "name:443" → loopback address
}

func newWorld(t *testing.T) *world {
	t.Helper()
	p, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, pki: p, routes: map[string]string{}}
}

// serve starts an HTTPS server for name with h.
func (w *world) serve(name string, h http.Handler) {
	w.t.Helper()
	cert, err := w.pki.PublicIntermediate.Issue(lab.LeafOptions{}, name)
	if err != nil {
		w.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	srv.StartTLS()
	w.t.Cleanup(srv.Close)
	w.routes[name+":443"] = srv.Listener.Addr().String()
}

// closed routes name to a port nothing listens on.
func (w *world) closed(name string) {
	w.t.Helper()
	addr, err := lab.ClosedAddr()
	if err != nil {
		w.t.Fatal(err)
	}
	w.routes[name+":443"] = addr
}

func (w *world) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	to, ok := w.routes[addr]
	if !ok {
		return nil, errors.New("no route to " + addr + " in the lab")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

// checker checks with the lab's roots and a store in dir.
func (w *world) checker(dir string, now time.Time) *sumdb.Checker {
	return &sumdb.Checker{Roots: w.pki.PublicPool(), Dialer: w, Store: &sumdb.Store{Path: filepath.Join(dir, sumdb.StateFile)},
		Now: func() time.Time { return now }}
}

func database(t *testing.T, gosumdb, goproxy string) sumdb.Database {
	t.Helper()
	db, off, err := sumdb.ParseGOSUMDB(gosumdb)
	if err != nil || off {
		t.Fatalf("ParseGOSUMDB(%q) = %v, off %v", gosumdb, err, off)
	}
	if db.Proxies, err = sumdb.ParseGOPROXY(goproxy); err != nil {
		t.Fatal(err)
	}
	return db
}

func newLog(t *testing.T, n int, seed string) *sumdbtest.Log {
	t.Helper()
	l, err := sumdbtest.NewLog(dbName)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(n, seed); err != nil {
		t.Fatal(err)
	}
	return l
}

func grow(t *testing.T, l *sumdbtest.Log, n int, seed string) *sumdbtest.Log {
	t.Helper()
	if err := l.Add(n, seed); err != nil {
		t.Fatal(err)
	}
	return l
}

// check runs one check and judges it.
func check(t *testing.T, c *sumdb.Checker, db sumdb.Database) (detector.Observation, detector.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obs := c.Check(ctx, db)
	exp := detector.Expectation{SumDBMaxAge: 24 * time.Hour}
	return obs, detector.Judge([]detector.Case{{Obs: obs, Expect: exp}}, detector.Policy{}, c.Now())[0]
}

func want(t *testing.T, r detector.Result, v detector.Verdict, reasons ...detector.Reason) {
	t.Helper()
	var got []detector.Reason
	for _, f := range r.Findings {
		got = append(got, f.Reason)
	}
	if r.Verdict != v || strings.Join(reasonStrings(got), ",") != strings.Join(reasonStrings(reasons), ",") {
		t.Fatalf("verdict %s %v, want %s %v; findings %+v; sumdb %+v", r.Verdict, got, v, reasons, r.Findings, r.Obs.SumDB)
	}
}

func reasonStrings(rs []detector.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// TestGoodTreeAndItsGrowth: the first tree is kept, a grown tree is proved
// to extend it and kept in turn, the same tree again is the same.
func TestGoodTreeAndItsGrowth(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 300, "a")
	w.serve(proxyName, sumdbtest.NewProxy(log))
	dir := t.TempDir()
	db := database(t, log.VerifierKey(), "https://"+proxyName+",direct")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	obs, r := check(t, w.checker(dir, now), db)
	want(t, r, detector.OK, detector.ReasonSumDBFirstTree)
	st := obs.SumDB
	if !st.ViaProxy || st.URL != "https://"+proxyName+"/sumdb/"+dbName || st.Tree.Size != 300 || st.Consistency != detector.ConsistencyFirst {
		t.Fatalf("first check: %+v", st)
	}
	if !obs.ConnectedAddr.IsValid() {
		t.Error("no connected address recorded")
	}

	grow(t, log, 517, "b")
	obs, r = check(t, w.checker(dir, now.Add(time.Hour)), db)
	want(t, r, detector.OK)
	if st := obs.SumDB; st.Consistency != detector.ConsistencyExtends || st.Kept.Size != 300 || st.Tree.Size != 817 || !st.GrownAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("grown: %+v", st)
	}

	obs, r = check(t, w.checker(dir, now.Add(2*time.Hour)), db)
	want(t, r, detector.OK)
	if st := obs.SumDB; st.Consistency != detector.ConsistencySame || !st.GrownAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("same: %+v", st)
	}
	// Two days without growth: stale.
	_, r = check(t, w.checker(dir, now.Add(50*time.Hour)), db)
	want(t, r, detector.OK, detector.ReasonSumDBStale)
}

// TestHeadSignedByAnotherKey: a head the database's key did not sign is
// intercepted, with the signer and the tree it claims as evidence.
func TestHeadSignedByAnotherKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 40, "a")
	impostor := newLog(t, 1, "x")
	forged, err := log.SignedBy(impostor)
	if err != nil {
		t.Fatal(err)
	}
	log.Replay(forged)
	w.serve(dbName, log)
	obs, r := check(t, w.checker(t.TempDir(), time.Now()), database(t, log.VerifierKey(), "direct"))
	want(t, r, detector.Intercepted, detector.ReasonSumDBSignature)
	st := obs.SumDB
	if st.Signature != detector.SignatureUnknownKey || len(st.Signers) != 1 || st.Tree == nil || st.Tree.Size != 40 || st.ViaProxy {
		t.Fatalf("%+v", st)
	}
	if _, err := os.Stat(obs.SumDB.StatePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a forged head was kept: %v", err)
	}
}

// TestForks: a tree that does not extend the kept one is intercepted, and
// the kept tree stays.
func TestForks(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// kept is the log the first check sees; served the handler the
		// second check sees.
		setup  func(t *testing.T) (kept *sumdbtest.Log, served http.Handler)
		want   detector.SumDBConsistency
		detail string
	}{
		{"same size, other hash", func(t *testing.T) (*sumdbtest.Log, http.Handler) {
			base := newLog(t, 100, "base")
			other := base.Fork()
			return grow(t, base, 20, "a"), grow(t, other, 20, "f")
		}, detector.ConsistencyForked, "the same size with another hash"},
		{"a larger tree that does not contain the kept one", func(t *testing.T) (*sumdbtest.Log, http.Handler) {
			base := newLog(t, 100, "base")
			other := base.Fork()
			return grow(t, base, 50, "a"), grow(t, other, 300, "f")
		}, detector.ConsistencyForked, "consistency proof from size 150 to size 400 fails"},
		{"a smaller tree", func(t *testing.T) (*sumdbtest.Log, http.Handler) {
			base := newLog(t, 100, "base")
			old, err := base.Head()
			if err != nil {
				t.Fatal(err)
			}
			replayed := base.Fork()
			replayed.Replay(old)
			return grow(t, base, 50, "a"), replayed
		}, detector.ConsistencySmaller, "50 records fewer"},
		{"tiles of another history under a signed head", func(t *testing.T) (*sumdbtest.Log, http.Handler) {
			base := newLog(t, 100, "base")
			kept := base.Fork()
			signed := grow(t, base.Fork(), 200, "a")
			tiles := grow(t, base.Fork(), 200, "f")
			return kept, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/latest" {
					signed.ServeHTTP(w, r)
					return
				}
				tiles.ServeHTTP(w, r)
			})
		}, detector.ConsistencyForked, "tiles do not match its signed head"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			kept, served := c.setup(t)
			w := newWorld(t)
			proxy := sumdbtest.NewProxy(kept)
			w.serve(proxyName, proxy)
			dir := t.TempDir()
			db := database(t, kept.VerifierKey(), "https://"+proxyName)
			_, r := check(t, w.checker(dir, time.Now()), db)
			want(t, r, detector.OK, detector.ReasonSumDBFirstTree)
			before, err := os.ReadFile(filepath.Join(dir, sumdb.StateFile))
			if err != nil {
				t.Fatal(err)
			}

			proxy.Serve(dbName, served)
			obs, r := check(t, w.checker(dir, time.Now()), db)
			want(t, r, detector.Intercepted, detector.ReasonSumDBForked)
			if !strings.Contains(obs.SumDB.ConsistencyDetail, c.detail) {
				t.Errorf("detail %q, want it to say %q", obs.SumDB.ConsistencyDetail, c.detail)
			}
			if obs.SumDB.Consistency != c.want || obs.SumDB.Kept == nil || obs.SumDB.Kept.Size != kept.Size() {
				t.Fatalf("%+v", obs.SumDB)
			}
			after, _ := os.ReadFile(filepath.Join(dir, sumdb.StateFile))
			if string(before) != string(after) {
				t.Error("the tree that contradicts the kept one replaced it")
			}
			// It stays intercepted: the kept tree is still what it was.
			_, r = check(t, w.checker(dir, time.Now()), db)
			want(t, r, detector.Intercepted, detector.ReasonSumDBForked)
		})
	}
}

// TestDatabaseBlockedWhileTheProxyAnswers: the proxy does not serve the
// database (404), so the go command goes directly, and the direct path is
// refused: blocked. With no proxy to answer, the same failure is only
// unreachable.
func TestDatabaseBlockedWhileTheProxyAnswers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 10, "a")
	w.serve(proxyName, sumdbtest.NewProxy())
	w.closed(dbName)
	obs, r := check(t, w.checker(t.TempDir(), time.Now()), database(t, log.VerifierKey(), "https://"+proxyName+",direct"))
	want(t, r, detector.Blocked, detector.ReasonSumDBBlocked)
	if st := obs.SumDB; st.ViaProxy || !st.ProxyAnswered || st.URL != "https://"+dbName || obs.Failure != detector.FailureRefused {
		t.Fatalf("%+v, failure %s", st, obs.Failure)
	}
	_, r = check(t, w.checker(t.TempDir(), time.Now()), database(t, log.VerifierKey(), "direct"))
	want(t, r, detector.Unreachable, detector.ReasonUnreachable)
}

// TestProxyRefusingTheDatabase: a proxy that answers /supported with 403
// is where the go command stops; its page is the evidence.
func TestProxyRefusingTheDatabase(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 10, "a")
	w.serve(dbName, log)
	w.serve(proxyName, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		rw.WriteHeader(http.StatusForbidden)
		rw.Write([]byte("<html><title>Blocked by policy</title></html>"))
	}))
	obs, r := check(t, w.checker(t.TempDir(), time.Now()), database(t, log.VerifierKey(), "https://"+proxyName+",direct"))
	want(t, r, detector.Blocked, detector.ReasonSumDBBlocked)
	if obs.Plain == nil || obs.Plain.Status != 403 || obs.Plain.Title != "Blocked by policy" || obs.Failure != detector.FailureHTTPStatus {
		t.Fatalf("plain %+v failure %s", obs.Plain, obs.Failure)
	}
	// With "|" the go command moves on, to the database itself.
	obs, r = check(t, w.checker(t.TempDir(), time.Now()), database(t, log.VerifierKey(), "https://"+proxyName+"|direct"))
	want(t, r, detector.OK, detector.ReasonSumDBFirstTree)
	if obs.SumDB.ViaProxy || obs.SumDB.URL != "https://"+dbName {
		t.Fatalf("%+v", obs.SumDB)
	}
}

// TestExplicitURL: "name+key url" goes to url, past every proxy.
func TestExplicitURL(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 10, "a")
	w.serve("mirror.lab.example", log)
	obs, r := check(t, w.checker(t.TempDir(), time.Now()), database(t, log.VerifierKey()+" https://mirror.lab.example", "https://"+proxyName))
	want(t, r, detector.OK, detector.ReasonSumDBFirstTree)
	if obs.SumDB.URL != "https://mirror.lab.example" || obs.SumDB.ProxyAnswered {
		t.Fatalf("%+v", obs.SumDB)
	}
}

// TestPartialTilesGone: the log grew between the head and the tiles, and
// the server keeps only the full tile where a partial one was: it is read
// the way the go command reads it, from the full tile.
func TestPartialTilesGone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 100, "a")
	fullOnly := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if i := strings.LastIndex(r.URL.Path, ".p/"); i >= 0 {
			full := r.URL.Path[:i]
			probe := httptest.NewRecorder()
			log.ServeHTTP(probe, httptest.NewRequest(http.MethodGet, full, nil))
			if probe.Code == http.StatusOK {
				http.NotFound(rw, r)
				return
			}
		}
		log.ServeHTTP(rw, r)
	})
	w.serve(dbName, fullOnly)
	dir := t.TempDir()
	db := database(t, log.VerifierKey(), "direct")
	check(t, w.checker(dir, time.Now()), db)
	grow(t, log, 200, "b")
	head, err := log.Head()
	if err != nil {
		t.Fatal(err)
	}
	grow(t, log, 300, "c")
	log.Replay(head)
	obs, r := check(t, w.checker(dir, time.Now()), db)
	want(t, r, detector.OK)
	if obs.SumDB.Consistency != detector.ConsistencyExtends || obs.SumDB.Tree.Size != 300 {
		t.Fatalf("%+v", obs.SumDB)
	}
}

// TestBrokenStateFile: a state file that cannot be used is said so, and
// the check starts again from the tree it verifies.
func TestBrokenStateFile(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 10, "a")
	w.serve(dbName, log)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, sumdb.StateFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	obs, r := check(t, w.checker(dir, time.Now()), database(t, log.VerifierKey(), "direct"))
	want(t, r, detector.OK, detector.ReasonSumDBFirstTree)
	if !strings.Contains(obs.SumDB.ConsistencyDetail, "starting again") {
		t.Errorf("detail %q", obs.SumDB.ConsistencyDetail)
	}
	_, r = check(t, w.checker(dir, time.Now()), database(t, log.VerifierKey(), "direct"))
	want(t, r, detector.OK)
}

// TestSystemStoreAtHandshake: with SystemStore, the store is asked for
// once the connection is up, not before, and verifies the database as
// Roots does: the lab's roots prove the tree, another PKI's fail it as an
// unknown authority. The store is asked once per connection, so a store
// still loading holds up only the handshake.
func TestSystemStoreAtHandshake(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 300, "a")
	w.serve(proxyName, sumdbtest.NewProxy(log))
	other, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	db := database(t, log.VerifierKey(), "https://"+proxyName+",direct")
	for _, tt := range []struct {
		name  string
		roots *trust.Roots
		ok    bool
	}{{"the lab's roots", trust.NewRoots(w.pki.PublicRoot.Cert), true}, {"another PKI's roots", trust.NewRoots(other.PublicRoot.Cert), false}} {
		t.Run(tt.name, func(t *testing.T) {
			var asked atomic.Int32
			c := w.checker(t.TempDir(), time.Now())
			c.Roots = nil
			c.SystemStore = func() *trust.Roots { asked.Add(1); return tt.roots }
			obs, r := check(t, c, db)
			if tt.ok {
				want(t, r, detector.OK, detector.ReasonSumDBFirstTree)
			} else if obs.Failure != detector.FailureUnknownAuthority {
				t.Errorf("failure %v (%+v), want %v", obs.Failure, obs.SumDB, detector.FailureUnknownAuthority)
			}
			if asked.Load() == 0 {
				t.Error("SystemStore was never asked")
			}
		})
	}
}

// fromDialer dials as the world does and, as check.DNS does, takes a
// head start to where a host was; it records each dial it is asked for.
type fromDialer struct {
	w    *world
	mu   sync.Mutex
	from []string // "addr from last"
	byGo bool     // answer as for a host of both families
	slow map[string]time.Duration
}

func (d *fromDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, _, _ := net.SplitHostPort(addr); net.ParseIP(host) != nil {
		var nd net.Dialer
		return nd.DialContext(ctx, network, addr) // the proxy, on loopback
	}
	return d.w.DialContext(ctx, network, addr)
}

func (d *fromDialer) DialFrom(ctx context.Context, network, addr string, last sumdb.Reach) (net.Conn, sumdb.Reach, error) {
	d.mu.Lock()
	d.from = append(d.from, fmt.Sprintf("%s from %s", addr, reachString(last)))
	d.mu.Unlock()
	time.Sleep(d.slow[addr])
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, sumdb.Reach{}, err
	}
	if host, _, _ := net.SplitHostPort(addr); net.ParseIP(host) != nil {
		return conn, sumdb.Reach{}, nil
	}
	ap := netip.MustParseAddrPort(conn.RemoteAddr().String())
	return conn, sumdb.Reach{Addr: ap.Addr(), ByGo: d.byGo}, nil
}

func reachString(r sumdb.Reach) string {
	if !r.Addr.IsValid() {
		return "nowhere"
	}
	if r.ByGo {
		return r.Addr.String() + " by go"
	}
	return r.Addr.String()
}

func (d *fromDialer) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.from
	d.from = nil
	return out
}

// reachedHosts is the reached file's hosts: "addr by".
func reachedHosts(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, sumdb.ReachedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Hosts map[string]struct{ Addr, By string } `json:"hosts"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for h, r := range doc.Hosts {
		out[h] = r.Addr + " " + r.By
	}
	return out
}

// TestNextCheckStartsWhereItReached: where a check reached each host by
// name, and whether Go's dialer chose the address, is kept apart from the
// trees, and the next check's connection to it starts from there: to the
// database itself, or to the module proxy that serves it. An HTTPS proxy,
// dialed by address, is never kept.
func TestNextCheckStartsWhereItReached(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 10, "a")
	w.serve(dbName, log)
	w.serve(proxyName, sumdbtest.NewProxy(log))
	d := &fromDialer{w: w}
	dir := t.TempDir()
	checker := func() *sumdb.Checker {
		c := w.checker(dir, time.Now())
		c.Dialer = d
		c.Reached = &sumdb.Reached{Path: filepath.Join(dir, sumdb.ReachedFile)}
		return c
	}
	at := func(name string) string {
		ap, err := netip.ParseAddrPort(w.routes[name+":443"])
		if err != nil {
			t.Fatal(err)
		}
		return ap.Addr().String()
	}
	direct := database(t, log.VerifierKey(), "direct")
	proxied := database(t, log.VerifierKey(), "https://"+proxyName+",direct")
	db, px := dbName+":443", proxyName+":443"
	for i, step := range []struct {
		name    string
		db      sumdb.Database
		byGo    bool
		from    []string          // the dials and their head starts
		reached map[string]string // the file after
	}{
		{"first, direct", direct, false, []string{db + " from nowhere"},
			map[string]string{db: at(dbName) + " system"}},
		{"again", direct, false, []string{db + " from " + at(dbName)},
			map[string]string{db: at(dbName) + " system"}},
		{"through the module proxy", proxied, false, []string{px + " from nowhere"},
			map[string]string{db: at(dbName) + " system", px: at(proxyName) + " system"}},
		{"through it again", proxied, false, []string{px + " from " + at(proxyName)},
			map[string]string{db: at(dbName) + " system", px: at(proxyName) + " system"}},
		{"both families", direct, true, []string{db + " from " + at(dbName)},
			map[string]string{db: at(dbName) + " go", px: at(proxyName) + " system"}},
		{"by go again", direct, true, []string{db + " from " + at(dbName) + " by go"},
			map[string]string{db: at(dbName) + " go", px: at(proxyName) + " system"}},
	} {
		d.byGo = step.byGo
		grow(t, log, 3, fmt.Sprint(i))
		obs, r := check(t, checker(), step.db)
		if r.Verdict != detector.OK {
			t.Fatalf("%s: %s %+v %+v", step.name, r.Verdict, r.Findings, obs.SumDB)
		}
		if from := d.take(); !slices.Equal(from, step.from) {
			t.Errorf("%s: dials %v, want %v", step.name, from, step.from)
		}
		if got := reachedHosts(t, dir); !maps.Equal(got, step.reached) {
			t.Errorf("%s: reached %v, want %v", step.name, got, step.reached)
		}
	}

	// Through an HTTPS proxy the database's name is not resolved here,
	// and the proxy, dialed by address, is not kept.
	proxy, err := lab.NewInterceptor(w.pki, lab.InterceptorOptions{Tunnel: true, Routes: lab.Routes{dbName: w.routes[dbName+":443"]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	c := checker()
	c.Proxy = func(*url.URL) (*url.URL, error) { return proxy.URL(), nil }
	grow(t, log, 3, "proxied")
	obs, r := check(t, c, direct)
	want(t, r, detector.OK)
	if obs.Path.Kind != detector.PathProxy {
		t.Fatalf("through the proxy: %+v", obs.Path)
	}
	if from := d.take(); len(from) != 1 || from[0] != proxy.Addr()+" from nowhere" {
		t.Errorf("dials %v, want the proxy's alone", from)
	}
	if got := reachedHosts(t, dir); len(got) != 2 || got[proxy.Addr()] != "" {
		t.Errorf("reached %v: the proxy's address is kept, or the others were lost", got)
	}
}

// A dial the transport started for a check may end after the check has
// returned and kept what its dials found; it is noted then without a race
// (run with -race).
func TestReachedNotedAfterTheCheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	log := newLog(t, 10, "a")
	w.serve(proxyName, sumdbtest.NewProxy()) // 404: on to the database
	w.serve(dbName, log)
	// The proxy has the check's second to answer, however loaded the
	// machine; the database's dial ends a second after the check.
	d := &fromDialer{w: w, slow: map[string]time.Duration{dbName + ":443": 2 * time.Second}}
	dir := t.TempDir()
	c := w.checker(dir, time.Now())
	c.Dialer = d
	c.Reached = &sumdb.Reached{Path: filepath.Join(dir, sumdb.ReachedFile)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	obs := c.Check(ctx, database(t, log.VerifierKey(), "https://"+proxyName+",direct"))
	if obs.Failure == detector.FailureNone {
		t.Fatalf("the check did not time out on the slow database: %+v", obs.SumDB)
	}
	time.Sleep(1500 * time.Millisecond) // the database's dial ends, and is noted
	if got := reachedHosts(t, dir); got[proxyName+":443"] == "" {
		t.Errorf("reached %v, want the proxy's, found before the check ended", got)
	}
}
