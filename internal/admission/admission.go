// Package admission decides how much of chatd one client address may hold
// at once and take per second: TCP connections, streams that have not
// joined yet (see [WaitingRoom]), sessions (held ones included), joins and
// resumes, calls of the unary lists, and refusals. It is the one place
// where chatd tells clients apart by address, and where it learns a
// client's address from a reverse proxy it trusts.
//
// Addresses are counted as the limits' keys (see [Key]): an IPv4 address
// alone, but an IPv6 address with the rest of its /64, since one host or
// home is usually given a whole /64 and could otherwise take a new address
// for every connection.
package admission

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Config is what one client address may have. A zero limit or rate turns
// that limit off.
type Config struct {
	// MaxConns is how many TCP connections one address may have open on
	// chatd's ports together. Connections from trusted proxies are not
	// counted: they carry many clients.
	MaxConns int
	// MaxUnjoined is how many streams one address may have that have not
	// sent their join yet (see [NewWaitingRoom]).
	MaxUnjoined int
	// MaxSessions is how many sessions one address may have, counting
	// those held for a resume.
	MaxSessions int
	// JoinRate is how many joins and resumes one address may make per
	// second on average, and JoinBurst how many at once.
	JoinRate  float64
	JoinBurst int
	// ListRate is how many ListUsers, ListChannels and History calls one
	// address may make per second on average, and ListBurst how many at
	// once.
	ListRate  float64
	ListBurst int
	// RefusalRate is how many refusals one address may be given per second
	// on average (see [Limiter.Refused]), and RefusalBurst how many at
	// once. Past them the address is shut out for [ShutOutFor].
	RefusalRate  float64
	RefusalBurst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: a request from one of them is counted against the address
	// the proxy says it forwards.
	TrustedProxies []netip.Prefix
}

// sweepEvery is how often addresses that hold nothing are forgotten.
const sweepEvery = time.Minute

// ShutOutFor is how long an address that spent its refusals is shut out:
// a connection on which it is refused anything is closed, and its new
// connections are not served (see [Limiter.Listen]).
//
// A refusal has to be cheap, since a hostile client sends what is refused
// as fast as it is refused; but even a cheap one costs a stream's headers
// read and decoded and an answer written, on a connection whose reader
// never waits for the network while the client keeps it busy, and a
// hundred such connections are a hundred goroutines ahead of every honest
// client's in the scheduler's queue. A closed connection costs nothing
// more, and a client reconnecting is not served, before any of HTTP/2's
// set-up: gRPC's own clients then back off (a second at first, longer
// each time). A second is long enough for that, and short enough that
// honest clients sharing the address (behind one NAT) are kept out of new
// connections only briefly; their sessions on connections already open
// go on.
const ShutOutFor = time.Second

// closeDelay is how long a connection that is to be closed for a refusal
// is left open, so that gRPC writes the refusal's status first and the
// client learns why.
const closeDelay = 50 * time.Millisecond

// Limiter counts what every client address holds. It is safe for
// concurrent use.
type Limiter struct {
	cfg    Config
	logger *slog.Logger

	mu        sync.Mutex          // guards the fields below
	clients   map[netip.Addr]*use // by Key
	conns     map[connKey]*conn   // the counted connections open, to close one for a refusal
	lastSweep time.Time
}

// use is what one address holds and has spent.
type use struct {
	conns, sessions        int
	joins, lists, refusals *rate.Limiter // nil until first needed
	shutUntil              time.Time     // see ShutOutFor
}

// idle reports whether u holds nothing, is not shut out and its buckets
// are full again, so that forgetting it changes nothing.
func (u *use) idle(now time.Time) bool {
	full := func(l *rate.Limiter) bool { return l == nil || l.TokensAt(now) >= float64(l.Burst()) }
	return u.conns == 0 && u.sessions == 0 && !now.Before(u.shutUntil) && full(u.joins) && full(u.lists) && full(u.refusals)
}

// connKey names a connection by its two ends, as gRPC's peer of a call
// does.
type connKey struct{ remote, local string }

// New returns a limiter with the limits of cfg. log receives a line for
// connections it refuses; give it a rate-limited logger.
func New(cfg Config, logger *slog.Logger) *Limiter {
	return &Limiter{cfg: cfg, logger: logger, clients: make(map[netip.Addr]*use), conns: make(map[connKey]*conn), lastSweep: time.Now()}
}

// Key returns the address that limits count against for a: a itself for
// IPv4 (an IPv4-mapped IPv6 address counts as its IPv4 address), its /64
// for IPv6.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a.WithZone("")
}

// Trusted reports whether a is a trusted proxy.
func (l *Limiter) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the client's address for a request that came from
// remote carrying the X-Forwarded-For values xff. Unless remote is a
// trusted proxy, it is remote: anyone can write the header. From a trusted
// proxy, it is the last address in the header that is not itself a trusted
// proxy (each proxy appends the address it got the request from, so the
// addresses to the left of an untrusted one may be forged).
func (l *Limiter) ClientAddr(remote netip.Addr, xff []string) netip.Addr {
	remote = remote.Unmap()
	if !l.Trusted(remote) {
		return remote
	}
	client := remote
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				// A proxy we trust wrote something we cannot read: the
				// address it came from is the best we know.
				return client
			}
			client = a.Unmap()
			if !l.Trusted(client) {
				return client
			}
		}
	}
	return client
}

// clientKey is the context key of the address set by [NewContext].
type clientKey struct{}

// NewContext returns ctx carrying the client address a, as worked out by
// whoever accepted the request (the browser gateway, which sees the HTTP
// request the proxy sent). [Limiter.FromContext] prefers it to anything
// else the context says.
func NewContext(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, a)
}

// FromContext returns the client address of a gRPC call: the one put there
// by [NewContext], or else the peer's address, and from a trusted proxy
// the address its x-forwarded-for metadata names. The second result is
// false when there is no address at all (a test's in-memory connection).
//
// It runs for every call refused for its address's limits, so it reads
// the metadata only from a trusted proxy, and without copying it.
func (l *Limiter) FromContext(ctx context.Context) (netip.Addr, bool) {
	if a, ok := ctx.Value(clientKey{}).(netip.Addr); ok {
		return a, true
	}
	remote, ok := PeerAddr(ctx)
	if !ok {
		return netip.Addr{}, false
	}
	if !l.Trusted(remote) {
		return remote, true
	}
	return l.ClientAddr(remote, metadata.ValueFromIncomingContext(ctx, "x-forwarded-for")), true
}

// PeerAddr returns the address of the peer of ctx's gRPC call (the proxy,
// if there is one), or false if it has none (an in-memory connection).
func PeerAddr(ctx context.Context) (netip.Addr, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}, false
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		a, ok := netip.AddrFromSlice(tcp.IP)
		return a.Unmap().WithZone(tcp.Zone), ok
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// getLocked returns what a holds, creating the entry. Lock must be held.
func (l *Limiter) getLocked(a netip.Addr) *use {
	k := Key(a)
	u := l.clients[k]
	if u == nil {
		u = &use{}
		l.clients[k] = u
	}
	return u
}

// sweepLocked forgets idle addresses now and then, so that the map holds
// only addresses seen lately. Lock must be held.
func (l *Limiter) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for k, u := range l.clients {
		if u.idle(now) {
			delete(l.clients, k)
		}
	}
}

// acquire counts one more of what field picks for a if that stays within
// limit (0: no limit), and reports whether it did.
func (l *Limiter) acquire(a netip.Addr, limit int, field func(*use) *int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.getLocked(a)
	n := field(u)
	if limit > 0 && *n >= limit {
		return false
	}
	*n++
	return true
}

// release counts one less of what field picks for a.
func (l *Limiter) release(a netip.Addr, field func(*use) *int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	*field(l.getLocked(a))--
	l.sweepLocked(now)
}

func sessionsOf(u *use) *int { return &u.sessions }

// AcquireSession counts a new session of a, unless a has MaxSessions
// already. Call ReleaseSession when the session is over for good.
func (l *Limiter) AcquireSession(a netip.Addr) bool {
	return l.acquire(a, l.cfg.MaxSessions, sessionsOf)
}

// ReleaseSession undoes an AcquireSession.
func (l *Limiter) ReleaseSession(a netip.Addr) { l.release(a, sessionsOf) }

// MoveSession counts a session of from as one of to: the session was
// resumed from another address. It is not refused: the session exists
// already, and its owner has its token.
func (l *Limiter) MoveSession(from, to netip.Addr) {
	if Key(from) == Key(to) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.getLocked(from).sessions--
	l.getLocked(to).sessions++
}

// AddSession counts a session of a that was admitted elsewhere (resumed
// here from another node of a cluster). Like MoveSession it is not
// refused. Call ReleaseSession when the session is over here.
func (l *Limiter) AddSession(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.getLocked(a).sessions++
}

// allow takes a token from a's bucket that pick chooses, creating it with
// r and burst, and reports whether there was one. r 0 means no limit.
func (l *Limiter) allow(a netip.Addr, r float64, burst int, pick func(*use) **rate.Limiter) bool {
	if r <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	b := pick(l.getLocked(a))
	if *b == nil {
		*b = rate.NewLimiter(rate.Limit(r), burst)
	}
	ok := (*b).AllowN(now, 1)
	l.sweepLocked(now)
	return ok
}

// AllowJoin reports whether a may join or resume now, and if so counts it.
func (l *Limiter) AllowJoin(a netip.Addr) bool {
	return l.allow(a, l.cfg.JoinRate, l.cfg.JoinBurst, func(u *use) **rate.Limiter { return &u.joins })
}

// AllowList reports whether a may call a unary list now, and if so counts
// it.
func (l *Limiter) AllowList(a netip.Addr) bool {
	return l.allow(a, l.cfg.ListRate, l.cfg.ListBurst, func(u *use) **rate.Limiter { return &u.lists })
}

// Refused counts a refusal of a call from a, for a limit or for what the
// call asked. Past RefusalBurst refusals at once, or RefusalRate per
// second on average, a is shut out for [ShutOutFor] (see [Limiter.ShutOut]):
// then the connection ctx's call came on is closed (a moment later, so
// that the refusal's status is written first), and Refused reports that
// it is. A connection from a trusted proxy is never closed (it carries
// others), and a trusted proxy's own address never shut out. A shut-out
// address is not counted a refusal more: its budget is spent.
func (l *Limiter) Refused(ctx context.Context, a netip.Addr) (closing bool) {
	if l.cfg.RefusalRate <= 0 || !a.IsValid() || l.Trusted(a) {
		return false
	}
	l.mu.Lock()
	now := time.Now()
	u := l.getLocked(a)
	shut := now.Before(u.shutUntil)
	if !shut {
		if u.refusals == nil {
			u.refusals = rate.NewLimiter(rate.Limit(l.cfg.RefusalRate), l.cfg.RefusalBurst)
		}
		if !u.refusals.AllowN(now, 1) {
			u.shutUntil = now.Add(ShutOutFor)
			shut = true
			l.logger.Warn("address shut out: too many refusals", "client", a.String(), "for", ShutOutFor,
				"refusal_rate_per_ip", l.cfg.RefusalRate, "refusal_burst_per_ip", l.cfg.RefusalBurst)
		}
	}
	var c *conn
	if shut {
		// Only counted connections are here: a trusted proxy's are not.
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && p.LocalAddr != nil {
			c = l.conns[connKey{p.Addr.String(), p.LocalAddr.String()}]
		}
	}
	l.sweepLocked(now)
	l.mu.Unlock()
	if c == nil {
		return false
	}
	c.closeSoon()
	return true
}

// ShutOut reports whether a is shut out now (see [Limiter.Refused]).
func (l *Limiter) ShutOut(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.clients[Key(a)]
	return u != nil && time.Now().Before(u.shutUntil)
}

// admitConn counts a new connection of a, unless a has MaxConns already
// (refused says so, for the log). If a is shut out, the connection is
// to be held unread until the shut-out ends, and then closed (until says
// when); with no MaxConns to bound how many are held, it is refused.
func (l *Limiter) admitConn(a netip.Addr) (until time.Time, refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.getLocked(a)
	shut := time.Now().Before(u.shutUntil)
	switch {
	case l.cfg.MaxConns > 0 && u.conns >= l.cfg.MaxConns:
		return time.Time{}, "too many from one address"
	case shut && l.cfg.MaxConns <= 0:
		return time.Time{}, "shut out for too many refusals"
	case shut:
		until = u.shutUntil
	}
	u.conns++
	return until, ""
}

// Listen returns lis with connections closed as soon as they are accepted
// if their address has MaxConns already. A client whose connection is
// closed this way sees it fail (gRPC: UNAVAILABLE); an HTTP/1 client, a
// reset.
//
// A connection from an address that is shut out (see [Limiter.Refused])
// is held instead, counted but never read, until the shut-out ends, and
// then closed: a client that reconnects as soon as it is closed would
// otherwise make chatd accept and close connections as fast as the
// kernel lets it (half of chatd's CPU, in a test of 150 such loops),
// where holding them makes it wait out the shut-out. The address's
// MaxConns bounds what it holds; without that limit, such connections are
// closed at once.
func (l *Limiter) Listen(lis net.Listener) net.Listener {
	return &listener{Listener: lis, l: l}
}

type listener struct {
	net.Listener
	l *Limiter
}

func (ll *listener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr != nil || ll.l.Trusted(ap.Addr()) {
			return c, nil
		}
		a := ap.Addr().Unmap()
		until, why := ll.l.admitConn(a)
		if why != "" {
			ll.l.logger.Warn("connection refused: "+why, "peer", c.RemoteAddr().String(), "max_conns_per_ip", ll.l.cfg.MaxConns)
			_ = c.Close()
			continue
		}
		if !until.IsZero() { // shut out: the shut-out was logged
			time.AfterFunc(time.Until(until), func() {
				_ = c.Close()
				ll.l.release(a, connsOf)
			})
			continue
		}
		return ll.l.track(c, a), nil
	}
}

func connsOf(u *use) *int { return &u.conns }

// track returns c, a connection of a counted by admitConn, as a conn that
// can be found by its ends (see Refused) until it is closed, and that is
// uncounted then.
func (l *Limiter) track(c net.Conn, a netip.Addr) *conn {
	k := connKey{c.RemoteAddr().String(), c.LocalAddr().String()}
	cc := newConn(c)
	cc.release = sync.OnceFunc(func() {
		l.mu.Lock()
		if l.conns[k] == cc {
			delete(l.conns, k)
		}
		l.mu.Unlock()
		l.release(a, connsOf)
	})
	l.mu.Lock()
	l.conns[k] = cc
	l.mu.Unlock()
	return cc
}

// conn is a counted connection; closing it (once or more) uncounts it.
type conn struct {
	net.Conn
	release func()
	ready   readyReader // see ReadOnReady
	closing sync.Once   // see closeSoon
}

func newConn(c net.Conn) *conn {
	cc := &conn{Conn: c}
	cc.ready.init(c)
	return cc
}

func (c *conn) Close() error {
	c.release()
	return c.Conn.Close()
}

// closeSoon closes c after closeDelay.
func (c *conn) closeSoon() {
	c.closing.Do(func() { time.AfterFunc(closeDelay, func() { _ = c.Close() }) })
}
