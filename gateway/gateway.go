// Package gateway serves chatd to browsers over HTTP, on one port: the
// grpc-web endpoint (improbable-eng/grpc-web around the same *grpc.Server
// that serves native gRPC, with its websocket transport, since a browser can
// only run a bidirectional stream over a websocket), the chat page, and
// /healthz.
//
// Five things improbable's wrapper does not do are done here:
//   - Origins: a grpc-web, websocket or CORS preflight request from a page of
//     another origin gets 403 unless that origin was allowed. (The wrapper's
//     own CORS check only withholds CORS headers, after the request has run.)
//   - Aborts: when a websocket closes without the grpc-web end-of-stream
//     marker, the wrapper cancels the request's context and hands the gRPC
//     server a clean io.EOF, which chatd would take for a logout. The body
//     seen by the gRPC server turns that EOF into an error, so a closed tab
//     is a disconnect, as it is for a native client.
//   - Dead peers: the wrapper's websocket pings never check for an answer.
//     Connections accepted by [Gateway.Serve] are watched instead: one that
//     has sent nothing for the keepalive time is pinged, and one that has
//     still sent nothing when the keepalive timeout has passed as well is
//     closed, the same bound native gRPC clients get (see keepalive.go).
//   - Stalled clients: the wrapper waits for a websocket's first message,
//     and net/http and gRPC for a request's body, for ever. A websocket
//     that has not sent its first message within the join timeout is
//     closed, and a request body must have arrived by then too (see
//     [Gateway.ServeHTTP]).
//   - Back-pressure: gRPC reads a grpc-web request's body as fast as the
//     client sends, into memory without limit, whether or not the
//     handler receives. The body gRPC reads is bounded by a window, as a
//     native stream is (see internal/recvwindow): a client that keeps
//     sending to a session chatd has stopped reading finds its own writes
//     stalled instead.
//
// Everything improbable-specific is in this package, so that the wrapper,
// which is in maintenance mode, can be swapped without touching the server.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/recvwindow"
	"github.com/chatd/chatd/server"
	"github.com/improbable-eng/grpc-web/go/grpcweb"
	"google.golang.org/grpc"
)

// Config is how the gateway behaves.
type Config struct {
	// AllowedOrigins are origins ("https://chat.example.com") whose pages
	// may use the API besides the page's own; "*" allows every origin.
	// [New] refuses what [ParseOrigin] does.
	AllowedOrigins []string
	// KeepaliveTime is how long a websocket may send nothing before it is
	// pinged; KeepaliveTimeout is how much longer it may then stay silent
	// before it is taken for dead and closed. Use the gRPC server's values,
	// so browsers and native clients are held to one bound.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// MaxRecvMsgSize is the gRPC server's largest request; websocket frames
	// are allowed that much plus grpc-web's framing.
	MaxRecvMsgSize int
	// JoinTimeout is how long a websocket may take to send grpc-web's first
	// message (the request headers) before it is closed; use the server's
	// join timeout. Any other request's body must have arrived within it
	// too.
	JoinTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and headers, in bytes, as
	// http.Server.MaxHeaderBytes does (net/http allows 4 KiB more for its
	// buffering); 0 is net/http's default, 1 MiB. A request with larger
	// headers gets 431.
	MaxHeaderBytes int
	// Page is the chat page's files, served at /; index.html is the page.
	Page fs.FS
	// Serving, if set, says whether chatd takes new sessions: /healthz
	// answers 503 while it does not (a cluster node catching up with the
	// cluster or cut off from it, or a chatd shutting down), so that a
	// load balancer sends browsers elsewhere.
	Serving func() bool
	// Admission, if not nil, counts the connections of each client address
	// (use the gRPC server's, so both ports count together) and tells the
	// gRPC server the address of each request's client, from
	// X-Forwarded-For if the request came through a trusted proxy.
	Admission *server.Limiter
	// TLS, if not nil, serves HTTPS (the page over https, the chat over
	// wss) with its certificate; use GetCertificate to take renewals.
	// HTTP/1.1 only: see [Gateway.Serve].
	TLS *tls.Config
}

// Gateway is an http.Handler for browsers. Its methods are safe for
// concurrent use.
type Gateway struct {
	cfg     Config
	logger  *slog.Logger
	web     *grpcweb.WrappedGrpcServer
	page    http.Handler
	allowed map[string]bool // lower-cased AllowedOrigins
	// clientStreams has the path of every method whose client sends a
	// stream of requests ("/chat.v1.ChatService/Chat").
	clientStreams map[string]bool
	any           bool         // AllowedOrigins has "*"
	srv           *http.Server // used by Serve and Shutdown

	loopbackOnly atomic.Bool // Serve listens on a loopback address (see knownHost)

	mu    sync.Mutex                // guards conns
	conns map[*watchedConn]struct{} // websockets being watched, for Shutdown
}

// New returns a gateway to the services of g. g must run
// recvwindow.StreamServerInterceptor (chatd's server does), which tells the
// bodies of grpc-web streams what their handlers have received: without
// it, a stream's requests stop at the window.
func New(g *grpc.Server, cfg Config, logger *slog.Logger) (*Gateway, error) {
	if cfg.KeepaliveTime <= 0 || cfg.KeepaliveTimeout <= 0 {
		return nil, errors.New("gateway: keepalive time and timeout must be positive")
	}
	if cfg.JoinTimeout <= 0 {
		return nil, errors.New("gateway: join timeout must be positive")
	}
	if cfg.MaxRecvMsgSize <= 0 {
		return nil, errors.New("gateway: max receive message size must be positive")
	}
	if cfg.MaxHeaderBytes < 0 {
		return nil, errors.New("gateway: max header bytes must not be negative")
	}
	if cfg.Page == nil {
		return nil, errors.New("gateway: no page to serve")
	}
	gw := &Gateway{
		cfg:           cfg,
		logger:        logger,
		allowed:       make(map[string]bool),
		clientStreams: make(map[string]bool),
		conns:         make(map[*watchedConn]struct{}),
	}
	if g != nil {
		for svc, info := range g.GetServiceInfo() {
			for _, m := range info.Methods {
				if m.IsClientStream {
					gw.clientStreams["/"+svc+"/"+m.Name] = true
				}
			}
		}
	}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			gw.any = true
			continue
		}
		canon, err := ParseOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("gateway: allowed origin %w", err)
		}
		gw.allowed[canon] = true
	}
	// The wrapper calls grpcHandler rather than g directly, so that the
	// request body can be replaced before the gRPC server reads it. With a
	// handler instead of a server, the wrapper must be told which methods
	// exist, or it refuses every websocket and preflight.
	gw.web = grpcweb.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fm, ok := r.Context().Value(firstMessageKey{}).(*firstMessage); ok {
			fm.arrived()
		}
		// gRPC's ServeHTTP transport reads a body as fast as it comes,
		// without limit: the window keeps it to what a native stream may
		// have sent and not been received (see internal/recvwindow).
		body := recvwindow.NewBody(&abortAwareBody{ReadCloser: r.Body, ctx: r.Context()}, cfg.MaxRecvMsgSize)
		r = r.WithContext(recvwindow.NewContext(r.Context(), body))
		r.Body = body
		g.ServeHTTP(w, r)
	}),
		grpcweb.WithEndpointsFunc(func() []string { return grpcweb.ListGRPCResources(g) }),
		grpcweb.WithWebsockets(true),
		// ServeHTTP has checked the origin already, with the request's Host.
		grpcweb.WithWebsocketOriginFunc(func(*http.Request) bool { return true }),
		grpcweb.WithOriginFunc(gw.crossOriginAllowed),
		grpcweb.WithWebsocketsMessageReadLimit(int64(cfg.MaxRecvMsgSize)+64),
	)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cfg.Serving != nil && !cfg.Serving() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not serving\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	files := http.FileServerFS(cfg.Page)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The page needs nothing but its own files and its own websocket,
		// so nothing else may run or load even if some text did slip
		// through as markup.
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// A restarted (perhaps upgraded) chatd must not be talked to by a
		// cached old script.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	gw.page = mux
	gw.srv = &http.Server{
		Handler: gw,
		// No read or write timeouts: websockets live for hours. Headers
		// must still come promptly, and be of a sane size; bodies have
		// the read deadline ServeHTTP sets.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return gw, nil
}

// ServeHTTP routes grpc-web, websocket and CORS preflight requests to the
// grpc-web wrapper, after the origin check, and everything else to the page.
//
// A request's body must arrive within the join timeout. Nothing else stops
// a client that announces a body and sends none from holding a handler,
// and its connection, for ever: gRPC reads the body of a grpc-web POST in
// a goroutine that it waits for when the call is over, and net/http's
// body Close does not unblock that Read; net/http itself reads what a
// handler left of a body (the page's, a refused upgrade's) before it
// answers. So the connection gets a read deadline while the body comes.
// The same bound does for a unary call (one small message) and for a Chat
// session over a grpc-web POST: over HTTP/1.1 that is half-duplex, its
// body holds every request of the session, which the client has in hand
// when it sends, since it cannot read anything before it has sent it
// all; and its end is the session's logout. Once the body has ended,
// net/http clears the deadline itself (it starts its background read for
// a hang-up then), so a response may take as long as it needs. If the body
// never ends, the deadline is left in place: it also bounds net/http's
// own read of the rest after the handler, and the connection is then
// closed, not reused. A reused connection is never left with it either:
// net/http sets its own read deadline before reading each request.
// Requests without a body get no deadline: their background read is
// already under way, and must not time out.
//
// A websocket gets a read deadline only until the upgrade (see
// hijackHook), since it lives for hours; then the join timeout bounds the
// wait for grpc-web's first message (see awaitFirstMessage), and the
// keepalive watcher everything after it.
func (gw *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		// Not supported by other servers than net/http's (or by a
		// recorder): there, the server's own timeouts are all there is.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(gw.cfg.JoinTimeout))
	}
	isWS := gw.web.IsGrpcWebSocketRequest(r)
	if !isWS && !gw.web.IsGrpcWebRequest(r) && !gw.web.IsAcceptableGrpcCorsRequest(r) {
		gw.page.ServeHTTP(w, r)
		return
	}
	if !gw.originAllowed(r) {
		gw.logger.Info("refused a request from another origin", "origin", r.Header.Get("Origin"), "path", r.URL.Path, "peer", r.RemoteAddr)
		http.Error(w, "requests from pages of this origin are not allowed: start chatd with --allowed-origins to allow it", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	if lim := gw.cfg.Admission; lim != nil {
		// The HTTP request is where a proxy's X-Forwarded-For is: a
		// websocket's gRPC metadata comes from its first message, which
		// the browser writes.
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ctx = server.NewClientContext(ctx, lim.ClientAddr(ap.Addr(), r.Header.Values("X-Forwarded-For")))
		}
	}
	if !isWS && gw.clientStreams[r.URL.Path] {
		// A Chat stream over a POST is read while it is answered: by
		// default net/http, once a handler starts its response, reads
		// and throws away what is left of the request's body (or
		// closes the connection), under the feet of gRPC's reading
		// goroutine, which then sees requests go missing or their bytes
		// torn apart. The body's window bounds what a client gets read
		// meanwhile. net/http then no longer finds out whether the body
		// was read to its end before the connection is used again, so
		// the connection is not used again. (A call with one request is
		// read whole before it is answered: it needs neither.)
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Connection", "close")
	}
	if isWS {
		// No permessage-deflate: the websocket library would compress
		// every response with a fresh compressor, each as two frames,
		// and a chat's responses are small protobuf messages that gain
		// little from it. Offered by every browser, it is declined by
		// not passing the offer on to the wrapper, which accepts what
		// the request asks for.
		r.Header.Del("Sec-WebSocket-Extensions")
		var fm *firstMessage
		ctx, fm = gw.awaitFirstMessage(ctx, r)
		defer fm.timer.Stop()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		w = &hijackHook{ResponseWriter: w, gw: gw, fm: fm, done: cancel}
	}
	// The wrapper changes the request it is given in place (body, method,
	// headers, path, protocol version), so it gets a copy: net/http must
	// still see the request it read. Given a body it does not know, it
	// takes one that did not all arrive for consumed, and keeps the
	// connection for another request, to be read from the rest of the body.
	gw.web.ServeHTTP(w, r.Clone(ctx))
}

// firstMessage is a websocket's wait for grpc-web's first message, which
// carries the request headers.
type firstMessage struct {
	state atomic.Int32 // msgWaiting, then msgArrived or msgTimedOut, whichever comes first
	timer *time.Timer

	mu   sync.Mutex // guards conn
	conn net.Conn   // the websocket's connection, once the library has taken it
}

const (
	msgWaiting = iota
	msgArrived
	msgTimedOut
)

// firstMessageKey is the context key of a websocket request's
// *firstMessage.
type firstMessageKey struct{}

// arrived records that the wrapper has read the first message and is
// handing the stream to the gRPC server: the join timeout is the server's
// business from here. If it came too late, the connection is closed
// already, and the stream ends at once.
func (fm *firstMessage) arrived() {
	if fm.state.CompareAndSwap(msgWaiting, msgArrived) {
		fm.timer.Stop()
	}
}

// hijacked records the connection the websocket library took, and closes
// it if the wait is over already.
func (fm *firstMessage) hijacked(c net.Conn) {
	fm.mu.Lock()
	fm.conn = c
	fm.mu.Unlock()
	if fm.state.Load() == msgTimedOut {
		_ = c.Close()
	}
}

// timedOut closes the connection, if the library has taken it (if not,
// hijacked will).
func (fm *firstMessage) timedOut() {
	fm.mu.Lock()
	c := fm.conn
	fm.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// awaitFirstMessage returns the context for the wrapper to handle the
// websocket request r with, derived from ctx, and a function to call when
// the request is over. The wrapper reads the websocket's first message
// without any deadline, and the keepalive watcher cannot tell a client
// library that answers pings and sends nothing else from a live stream:
// unless the first message has arrived within the join timeout, the
// connection is closed, which ends the read, the wrapper's handler and
// the watcher. Closing the connection, not cancelling the read's context:
// on a cancelled context the websocket library (nhooyr.io/websocket
// v1.8.6) starts a goroutine in a loop until the connection closes, 1.7
// million of them for 2,000 such websockets.
func (gw *Gateway) awaitFirstMessage(ctx context.Context, r *http.Request) (context.Context, *firstMessage) {
	fm := &firstMessage{}
	fm.timer = time.AfterFunc(gw.cfg.JoinTimeout, func() {
		if fm.state.CompareAndSwap(msgWaiting, msgTimedOut) {
			gw.logger.Info("websocket sent no request headers within the join timeout: closing", "peer", r.RemoteAddr, "join_timeout", gw.cfg.JoinTimeout)
			fm.timedOut()
		}
	})
	return context.WithValue(ctx, firstMessageKey{}, fm), fm
}

// originAllowed reports whether r may use the API: it comes from the
// page's own origin, an allowed one, or carries no Origin. Browsers send
// Origin on every websocket and every cross-origin request, so a request
// without one is not a browser acting for another site.
func (gw *Gateway) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return gw.any // "null" and other opaque origins
	}
	if strings.EqualFold(u.Host, r.Host) && gw.knownHost(r.Host) {
		return true
	}
	return gw.crossOriginAllowed(origin)
}

// knownHost reports whether host (from the Host header) can name this
// gateway. On a loopback listener only loopback names can: a page from
// evil.example whose name an attacker re-points at 127.0.0.1 (DNS
// rebinding) sends Origin and Host both evil.example, and must not count
// as the page's own origin. On other listeners the operator's names are
// unknown here, and rebinding gains an attacker nothing it could not do by
// connecting directly.
func (gw *Gateway) knownHost(host string) bool {
	if !gw.loopbackOnly.Load() {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// crossOriginAllowed reports whether pages of origin, another origin than
// the gateway's own, may use the API.
func (gw *Gateway) crossOriginAllowed(origin string) bool {
	return gw.any || gw.allowed[strings.ToLower(origin)]
}

// Serve accepts HTTP connections on lis until Shutdown, refusing those
// past the limit on connections per client address (see
// Config.Admission), over TLS if Config.TLS is set. Websockets accepted here are watched for dead peers;
// ServeHTTP used on its own does not watch them.
func (gw *Gateway) Serve(lis net.Listener) error {
	if a, ok := lis.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		gw.loopbackOnly.Store(true)
	}
	if gw.cfg.Admission != nil {
		lis = gw.cfg.Admission.Listen(lis)
	}
	if gw.cfg.TLS != nil {
		// TLS goes under the watch: the keepalive pings (see watchedConn)
		// are websocket frames, and must be written inside TLS records.
		// net/http then does not see a *tls.Conn, and so serves HTTP/1.1
		// only, which is what websockets use anyway: ALPN offers only
		// that. The handshake happens on the first read, within the
		// server's ReadHeaderTimeout.
		cfg := gw.cfg.TLS.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		lis = tls.NewListener(lis, cfg)
	}
	err := gw.srv.Serve(&watchListener{Listener: lis})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, waits (until ctx ends) for plain
// HTTP requests to finish, and closes every websocket still open. Shut the
// gRPC server down first: that ends every chat session properly, and their
// websockets with them.
func (gw *Gateway) Shutdown(ctx context.Context) error {
	err := gw.srv.Shutdown(ctx)
	gw.mu.Lock()
	conns := gw.conns
	gw.conns = make(map[*watchedConn]struct{})
	gw.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
	return err
}

func (gw *Gateway) track(c *watchedConn) {
	gw.mu.Lock()
	gw.conns[c] = struct{}{}
	gw.mu.Unlock()
}

func (gw *Gateway) untrack(c *watchedConn) {
	gw.mu.Lock()
	delete(gw.conns, c)
	gw.mu.Unlock()
}

// errAborted is what the gRPC server reads instead of io.EOF when a
// websocket went away without ending its stream.
var errAborted = errors.New("the websocket closed without ending the stream")

// abortAwareBody is the request body the gRPC server reads. improbable's
// websocket reader cancels the request's context before it returns io.EOF
// for a websocket that closed, and only then; for the end-of-stream marker
// it returns io.EOF with the context alive. So an EOF with the context done
// is an abort, and must reach Recv as an error, not as a half-close.
//
// It also ends the body once the gRPC server has closed it. When a stream
// is over (the session ended: logout, too slow, shutdown), gRPC closes the
// body and waits for its reading goroutine, which buffers whatever it reads
// for a stream nobody reads any more. improbable's body does not stop on
// Close, so a client that kept sending would keep that goroutine, the
// websocket and an ever-growing buffer alive.
type abortAwareBody struct {
	io.ReadCloser
	ctx    context.Context
	closed atomic.Bool // Close was called
}

func (b *abortAwareBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if b.closed.Load() {
		return 0, io.EOF // what arrived after the end is dropped
	}
	if err == io.EOF && b.ctx.Err() != nil {
		return n, errAborted
	}
	return n, err
}

func (b *abortAwareBody) Close() error {
	b.closed.Store(true)
	return b.ReadCloser.Close()
}
