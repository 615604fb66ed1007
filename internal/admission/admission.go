// Package admission decides how much of chatd one client address may hold
// at once and take per second: TCP connections, streams that have not
// joined yet (see [WaitingRoom]), sessions (held ones included), joins and
// resumes, and calls of the unary lists. It is the one place where chatd
// tells clients apart by address, and where it learns a client's address
// from a reverse proxy it trusts.
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
	// ListRate is how many ListUsers and ListChannels calls one address may
	// make per second on average, and ListBurst how many at once.
	ListRate  float64
	ListBurst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: a request from one of them is counted against the address
	// the proxy says it forwards.
	TrustedProxies []netip.Prefix
}

// sweepEvery is how often addresses that hold nothing are forgotten.
const sweepEvery = time.Minute

// Limiter counts what every client address holds. It is safe for
// concurrent use.
type Limiter struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex          // guards the fields below
	clients   map[netip.Addr]*use // by Key
	lastSweep time.Time
}

// use is what one address holds and has spent.
type use struct {
	conns, sessions int
	joins, lists    *rate.Limiter // nil until first needed
}

// idle reports whether u holds nothing and its buckets are full again, so
// that forgetting it changes nothing.
func (u *use) idle(now time.Time) bool {
	full := func(l *rate.Limiter) bool { return l == nil || l.TokensAt(now) >= float64(l.Burst()) }
	return u.conns == 0 && u.sessions == 0 && full(u.joins) && full(u.lists)
}

// New returns a limiter with the limits of cfg. log receives a line for
// connections it refuses; give it a rate-limited logger.
func New(cfg Config, log *slog.Logger) *Limiter {
	return &Limiter{cfg: cfg, log: log, clients: make(map[netip.Addr]*use), lastSweep: time.Now()}
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

func connsOf(u *use) *int    { return &u.conns }
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

// Listen returns lis with connections past MaxConns for their address
// closed as soon as they are accepted. A client whose connection is closed
// this way sees it fail (gRPC: UNAVAILABLE); an HTTP/1 client, a reset.
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
		if !ll.l.acquire(a, ll.l.cfg.MaxConns, connsOf) {
			ll.l.log.Warn("connection refused: too many from one address", "peer", c.RemoteAddr().String(), "max_conns_per_ip", ll.l.cfg.MaxConns)
			_ = c.Close()
			continue
		}
		return newConn(c, sync.OnceFunc(func() { ll.l.release(a, connsOf) })), nil
	}
}

// conn is a counted connection; closing it (once or more) uncounts it.
type conn struct {
	net.Conn
	release func()
	ready   readyReader // see ReadOnReady
}

func newConn(c net.Conn, release func()) *conn {
	cc := &conn{Conn: c, release: release}
	cc.ready.init(c)
	return cc
}

func (c *conn) Close() error {
	c.release()
	return c.Conn.Close()
}
