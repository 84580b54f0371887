package sumdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/plainhttp"
	"github.com/mitmwatch/mitmwatch/trust"
)

// Dialer opens connections; *net.Dialer is one. Tests and the lab swap it
// to reach a database by its name.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Checker checks checksum databases. Its fields say how the go command on
// this machine would reach them; the zero value uses the system roots,
// no proxy, and keeps no tree.
type Checker struct {
	// Roots verify TLS to the proxy and the database, as the go command
	// verifies it with the system store; nil means the system store.
	Roots *x509.CertPool
	// SystemStore, when set, gives Roots instead, asked for once the
	// database's chain has arrived: a store still loading beside the
	// probes (config.Config.SystemStore), never a second read of the
	// system's own, whose roots are parsed as the chain names them.
	SystemStore func() *trust.Roots
	// Proxy picks the HTTPS proxy, as http.Transport.Proxy does; nil
	// means direct. The command wires it to HTTPS_PROXY and NO_PROXY.
	Proxy  func(*url.URL) (*url.URL, error)
	Dialer Dialer // nil: a net.Dialer
	// Store keeps the verified trees; nil keeps none, and every check is
	// a first one.
	Store *Store
	// Reached keeps where each host was reached; nil keeps nothing, and
	// no connection gets a head start.
	Reached *Reached
	Now     func() time.Time // nil: time.Now

	once   sync.Once
	client *http.Client
}

// tileHeight is the tile height the go command reads the log with.
const tileHeight = 8

// Limits on what is read: a tree head is a few hundred bytes, a full tile
// of height 8 is 8 KiB.
const (
	maxNote = 16 << 10
	maxTile = (1 << tileHeight) * tlog.HashSize
)

// Check reads db's latest tree head the way the go command would, verifies
// it and proves it extends the kept one, and keeps it when it does. It
// never returns an error: a failure is part of the observation.
func (c *Checker) Check(ctx context.Context, db Database) detector.Observation {
	st := &detector.SumDBState{Name: db.Name}
	obs := detector.Observation{Host: db.Name, Port: 443, Protocol: detector.ProtocolSumDB,
		Path: detector.Path{Kind: detector.PathDirect}, SumDB: st}
	if c.Store != nil {
		st.StatePath = c.Store.Path
	}
	kept := c.loadKept(db)
	// Where each host was reached last: the connections this check opens
	// start there while their names resolve, and what they find is kept
	// for the next.
	ds := &dialState{last: c.Reached.Load()}
	ctx = context.WithValue(ctx, dialKey{}, ds)
	defer func() { c.Reached.Save(ds.found()) }()
	r := c.reader(&obs)
	base, err := r.route(ctx, db)
	if err != nil {
		obs.Failure, obs.FailureDetail = detector.FailureOf(err), err.Error()
		r.recordHTTP(err)
		return obs
	}
	r.base, st.URL = base, Redacted(base)
	if host, port, ok := hostPort(base); ok {
		obs.Port = port
		c.describePath(&obs, host, port)
	}
	latest, err := r.fetchRecorded(ctx, base+"/latest", maxNote, true)
	if err != nil {
		obs.Failure, obs.FailureDetail = detector.FailureOf(err), err.Error()
		r.recordHTTP(err)
		return obs
	}
	tree, ok := c.verify(st, db, latest)
	if !ok {
		return obs
	}
	c.compare(ctx, &obs, db, r, latest, tree, <-kept)
	return obs
}

// Reach is where a host was reached, and who chose the address.
type Reach struct {
	// Addr is the address reached, when it was the first its resolution
	// gave; invalid otherwise.
	Addr netip.Addr
	// ByGo says Go's own dialer decides for the host: the system's
	// resolution did not decide alone when it was first reached (no
	// address, or both families: Go orders them by RFC 6724 and races
	// them). Else the system's resolution, of one family, dialed in order.
	ByGo bool
}

// DialerFrom is a Dialer that resolves names itself and can take a head
// start (check.DNS): DialFrom dials addr as DialContext does, opening a
// connection to where the host was reached before (last; a zero Reach:
// nowhere) while the name resolves, used only where the resolution would
// dial that address first. It returns where and how the host was
// reached: the address only where it was the resolution's first, a zero
// Reach for an address dialed as it is.
type DialerFrom interface {
	Dialer
	DialFrom(ctx context.Context, network, addr string, last Reach) (net.Conn, Reach, error)
}

// dialKey is the context key of a check's dialState.
type dialKey struct{}

// dialState is where a check's dials start from, and what they found.
type dialState struct {
	last map[string]Reach // host:port → where it was reached before
	mu   sync.Mutex
	seen map[string]Reach // host:port → where it was reached now
}

func (s *dialState) note(addr string, r Reach) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]Reach{}
	}
	s.seen[addr] = r
}

// found is a copy of what the dials found: a dial http.Transport started
// for this check may still end, and note, after it.
func (s *dialState) found() map[string]Reach {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.seen)
}

// dial connects to addr with d, with a head start from where addr was
// reached before when d can take one, noting where it got to.
func dial(ctx context.Context, d Dialer, network, addr string) (net.Conn, error) {
	df, ok := d.(DialerFrom)
	s, _ := ctx.Value(dialKey{}).(*dialState)
	if !ok || s == nil {
		return d.DialContext(ctx, network, addr)
	}
	conn, r, err := df.DialFrom(ctx, network, addr, s.last[addr])
	if err != nil {
		return nil, err
	}
	s.note(addr, r)
	return conn, nil
}

// keptTree is the tree the store keeps for a database, as Store.Load
// gives it.
type keptTree struct {
	tree Kept
	have bool
	err  error
}

// loadKept starts reading the kept tree while the head is fetched: the
// read is the head's round trip's shadow, not a step after it.
func (c *Checker) loadKept(db Database) <-chan keptTree {
	done := make(chan keptTree, 1)
	if c.Store == nil {
		done <- keptTree{}
		return done
	}
	go func() {
		k, ok, err := c.Store.Load(db)
		done <- keptTree{k, ok, err}
	}()
	return done
}

// verify opens the tree head with the database's key, recording the
// outcome; ok reports a verified tree.
func (c *Checker) verify(st *detector.SumDBState, db Database, latest []byte) (tlog.Tree, bool) {
	v, err := note.NewVerifier(db.Key)
	if err != nil {
		st.Signature, st.SignatureDetail = detector.SignatureMalformed, err.Error()
		return tlog.Tree{}, false
	}
	n, err := note.Open(latest, note.VerifierList(v))
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		st.Signature, st.SignatureDetail = detector.SignatureUnknownKey, err.Error()
		for _, s := range unverified.Note.UnverifiedSigs {
			st.Signers = append(st.Signers, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		if t, err := tlog.ParseTree([]byte(unverified.Note.Text)); err == nil {
			st.Tree = treeOf(t)
		}
		return tlog.Tree{}, false
	case errors.As(err, &invalid):
		st.Signature, st.SignatureDetail = detector.SignatureInvalid, err.Error()
		return tlog.Tree{}, false
	case err != nil:
		st.Signature, st.SignatureDetail = detector.SignatureMalformed, err.Error()
		return tlog.Tree{}, false
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		st.Signature, st.SignatureDetail = detector.SignatureMalformed, "a signed note that is not a tree head: "+err.Error()
		return tlog.Tree{}, false
	}
	st.Signature, st.Tree = detector.SignatureVerified, treeOf(tree)
	return tree, true
}

// compare relates the verified tree to the kept one (k), proving the
// extension with the log's tiles, and keeps the tree when it is the kept
// one or extends it.
func (c *Checker) compare(ctx context.Context, obs *detector.Observation, db Database, r *reader, latest []byte, tree tlog.Tree, k keptTree) {
	st := obs.SumDB
	now := c.now()
	kept, have := k.tree, k.have
	if k.err != nil {
		st.ConsistencyDetail = k.err.Error() + "; starting again from this tree"
	}
	if have {
		st.Kept, st.KeptAt = treeOf(kept.Tree), kept.VerifiedAt
	}
	grownAt := now
	switch {
	case !have:
		st.Consistency = detector.ConsistencyFirst
	case tree.N == kept.Tree.N && tree.Hash == kept.Tree.Hash:
		st.Consistency, grownAt = detector.ConsistencySame, kept.GrownAt
	case tree.N == kept.Tree.N:
		st.Consistency, st.ConsistencyDetail = detector.ConsistencyForked, "the same size with another hash"
	case tree.N < kept.Tree.N:
		st.Consistency, st.ConsistencyDetail = detector.ConsistencySmaller,
			fmt.Sprintf("%d records fewer than the tree kept: a log only grows, so this head is an old one replayed or another log's", kept.Tree.N-tree.N)
	default:
		st.Consistency, st.ConsistencyDetail = prove(r.tiles(ctx), tree, kept.Tree)
	}
	st.GrownAt = grownAt
	switch st.Consistency {
	case detector.ConsistencyFirst, detector.ConsistencySame, detector.ConsistencyExtends:
	default:
		return // the kept tree stays: it is what the served one contradicts
	}
	if c.Store == nil {
		return
	}
	if err := c.Store.Save(db, Kept{Note: latest, Tree: tree, VerifiedAt: now, GrownAt: grownAt}); err != nil {
		st.ConsistencyDetail = "the tree verified but could not be kept: " + err.Error()
	}
}

// prove checks, with tiles authenticated by the new tree's hash, that the
// new tree contains the kept one: a consistency proof (RFC 6962 2.1.2).
func prove(tr tlog.TileReader, tree, kept tlog.Tree) (detector.SumDBConsistency, string) {
	thr := tlog.TileHashReader(tree, tr)
	p, err := tlog.ProveTree(tree.N, kept.N, thr)
	var fe *fetchError
	switch {
	case errors.As(err, &fe):
		return detector.ConsistencyUnverified, err.Error()
	case err != nil:
		// The tiles do not hash to the signed head: they are not the log
		// that was signed.
		return detector.ConsistencyForked, fmt.Sprintf("the log's tiles do not match its signed head of size %d: %v", tree.N, err)
	}
	if err := tlog.CheckTree(p, tree.N, tree.Hash, kept.N, kept.Hash); err != nil {
		return detector.ConsistencyForked, fmt.Sprintf("the consistency proof from size %d to size %d fails: %v", kept.N, tree.N, err)
	}
	return detector.ConsistencyExtends, ""
}

func treeOf(t tlog.Tree) *detector.SumDBTree {
	return &detector.SumDBTree{Size: t.N, Hash: t.Hash}
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// describePath records how the connection to host:port goes: through the
// HTTPS proxy the environment names, or directly.
func (c *Checker) describePath(obs *detector.Observation, host string, port int) {
	if c.Proxy == nil {
		return
	}
	u, err := c.Proxy(&url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))})
	if err == nil && u != nil {
		obs.Path = detector.Path{Kind: detector.PathProxy, Proxy: u.Host}
	}
}

// httpClient is the client every check shares, so a daemon reuses its
// connections. It never follows a redirect: the go command's does, but a
// redirect is then part of what is reported, not silently taken.
func (c *Checker) httpClient() *http.Client {
	c.once.Do(func() {
		d := c.Dialer
		if d == nil {
			d = &net.Dialer{}
		}
		var proxy func(*http.Request) (*url.URL, error)
		if c.Proxy != nil {
			proxy = func(req *http.Request) (*url.URL, error) { return c.Proxy(req.URL) }
		}
		tr := &http.Transport{
			Proxy: proxy,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dial(ctx, d, network, addr)
			},
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}
		switch {
		case c.SystemStore != nil && proxy == nil:
			// Direct: the lookup and the connection go ahead while the
			// store loads; it is asked for at the handshake.
			tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				return c.dialTLS(ctx, d, network, addr)
			}
		case c.SystemStore != nil:
			// Through a proxy the transport names the server: verify
			// against the whole store, parsed once.
			tr.TLSClientConfig = &tls.Config{RootCAs: c.SystemStore().Pool()}
		default:
			tr.TLSClientConfig = &tls.Config{RootCAs: c.Roots}
		}
		c.client = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return c.client
}

// dialTLS connects to addr and verifies it as http.Transport would, with
// the system store asked for only once the connection is up.
func (c *Checker) dialTLS(ctx context.Context, d Dialer, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	conn, err := dial(ctx, d, network, addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tc := tls.Client(conn, trust.VerifiedBy(&tls.Config{ServerName: host, NextProtos: []string{"h2", "http/1.1"}}, c.SystemStore))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

func hostPort(raw string) (string, int, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", 0, false
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", 0, false
		}
		port = n
	}
	return u.Hostname(), port, true
}

// statusError is an HTTP answer other than 200, kept as evidence.
type statusError struct {
	url    string
	status int
	answer *detector.HTTPAnswer
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.url, e.status, http.StatusText(e.status))
}

// Failure names the failure for detector.FailureOf.
func (e *statusError) Failure() detector.Failure { return detector.FailureHTTPStatus }

// notFound reports whether the answer says the resource is not there, on
// which the go command moves on to the next proxy.
func (e *statusError) notFound() bool {
	return e.status == http.StatusNotFound || e.status == http.StatusGone
}

// reader reads one database's resources, recording into obs.
type reader struct {
	c    *Checker
	obs  *detector.Observation
	base string
}

func (c *Checker) reader(obs *detector.Observation) *reader { return &reader{c: c, obs: obs} }

// recordHTTP keeps an HTTP answer other than 200 as the observation's
// plain answer: a block page is evidence.
func (r *reader) recordHTTP(err error) {
	var se *statusError
	if errors.As(err, &se) {
		r.obs.Plain = se.answer
	}
}

// route finds the base URL the go command would read the database at:
// GOSUMDB's URL when it gives one; else the first proxy that answers 200 to
// /sumdb/<name>/supported; else, when every proxy answered 404 or 410 (or
// any error, after "|"), or the list reached direct or off, the database
// itself. Any other answer from a proxy means the go command fails there.
func (r *reader) route(ctx context.Context, db Database) (string, error) {
	st := r.obs.SumDB
	if db.URL != "" {
		return db.URL, nil
	}
	direct := "https://" + db.Name
	for _, p := range db.Proxies {
		if p.URL == "direct" || p.URL == "off" {
			break
		}
		supported := p.URL + "/sumdb/" + db.Name + "/supported"
		_, err := r.fetchRecorded(ctx, supported, 1<<10, true)
		var se *statusError
		answered := err == nil || errors.As(err, &se)
		st.ProxyAnswered = st.ProxyAnswered || answered
		switch {
		case err == nil:
			st.ViaProxy = true
			return p.URL + "/sumdb/" + db.Name, nil
		case answered && se.notFound(), p.FallBackOnError:
			continue
		}
		st.URL = Redacted(supported)
		if host, port, ok := hostPort(p.URL); ok {
			r.obs.Port = port
			r.c.describePath(r.obs, host, port)
		}
		return "", fmt.Errorf("module proxy %s: %w", Redacted(p.URL), err)
	}
	return direct, nil
}

// get reads path under the base URL.
func (r *reader) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	return r.fetch(ctx, r.base+path, limit)
}

// fetch reads a URL, at most limit bytes. Only the resources read one at a
// time (not tiles) record the address they connected to and how long the
// answer took.
func (r *reader) fetch(ctx context.Context, raw string, limit int64) ([]byte, error) {
	return r.fetchRecorded(ctx, raw, limit, false)
}

func (r *reader) fetchRecorded(ctx context.Context, raw string, limit int64, record bool) ([]byte, error) {
	if record {
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if ap, err := netip.ParseAddrPort(info.Conn.RemoteAddr().String()); err == nil {
				r.obs.ConnectedAddr = ap
			}
		}}
		ctx = httptrace.WithClientTrace(ctx, trace)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", Redacted(raw), err)
	}
	start := time.Now()
	resp, err := r.c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", Redacted(raw), unwrapURL(err))
	}
	defer resp.Body.Close()
	if record {
		r.obs.HandshakeTime = time.Since(start)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: Redacted(raw), status: resp.StatusCode, answer: plainhttp.Read(resp)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", Redacted(raw), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: more than %d bytes", Redacted(raw), limit)
	}
	return data, nil
}

// unwrapURL drops url.Error's quoting of the URL, which the caller
// already names, keeping the cause for FailureOf.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// tiles is the log's tiles under the base URL, as the tlog package reads
// them.
func (r *reader) tiles(ctx context.Context) tlog.TileReader { return &tileReader{r: r, ctx: ctx} }

// fetchError is a tile that could not be read, as opposed to one that was
// read and does not match the signed head.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// tileReader reads tiles over HTTP, the way the go command's client does:
// a partial tile that is gone is read from its full tile.
type tileReader struct {
	r   *reader
	ctx context.Context
}

func (*tileReader) Height() int { return tileHeight }

// SaveTiles keeps nothing: each check proves afresh.
func (*tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// ReadTiles reads the tiles concurrently, a few at a time.
func (t *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	errs := make([]error, len(tiles))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, tile := range tiles {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = t.readTile(tile)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, &fetchError{err}
		}
	}
	return out, nil
}

func (t *tileReader) readTile(tile tlog.Tile) ([]byte, error) {
	want := tile.W * tlog.HashSize
	data, err := t.r.get(t.ctx, "/"+tile.Path(), maxTile)
	full := tile
	full.W = 1 << uint(tile.H)
	var se *statusError
	if errors.As(err, &se) && se.notFound() && tile != full {
		// The tile was completed since: only the full one is served.
		if data, err = t.r.get(t.ctx, "/"+full.Path(), maxTile); err == nil && len(data) >= want {
			data = data[:want]
		}
	}
	if err != nil {
		return nil, err
	}
	if len(data) != want {
		return nil, fmt.Errorf("tile %s: %d bytes, want %d", tile.Path(), len(data), want)
	}
	return data, nil
}
