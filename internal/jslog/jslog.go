// Package jslog keeps a chatd cluster's log in NATS JetStream: one stream
// whose sequence numbers are the chat's order, read by each node through
// one ordered consumer, and an object store that holds the last snapshot
// of the chat's state for nodes that start later.
//
// What it relies on (see docs/cluster.md):
//   - appends are acknowledged publishes with a message id, so that a
//     retry after a lost acknowledgement is dropped by the stream's
//     duplicate window instead of applied twice;
//   - the stream has no per-subject limit, only an age limit: a node that
//     falls behind by less than that age catches up with every entry;
//   - an ordered consumer delivers the stream in sequence order and
//     rebuilds itself after a lost connection, from where it was.
package jslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/chatd/chatd/server"
)

// Config is how to reach NATS and lay the log out in it.
type Config struct {
	// URLs are the NATS servers, comma-separated: nats://host:4222,….
	URLs string
	// Prefix names everything the cluster keeps in NATS, so that two chat
	// clusters can share one NATS: the stream <prefix>_log on the subject
	// <prefix>.log and the object store <prefix>_state.
	Prefix string
	// Name is the node's name, shown by NATS as its connection's.
	Name string
	// CredsFile is a NATS credentials file (user JWT and NKey seed), if
	// NATS wants one.
	CredsFile string
	// CAFile, CertFile and KeyFile set TLS to NATS: the CA that signed the
	// servers' certificates (the system's roots if empty), and the
	// client's certificate and key if NATS asks for one.
	CAFile, CertFile, KeyFile string
	// Replicas is how many NATS servers keep a copy of the log (1, 3 or 5).
	Replicas int
	// Memory keeps the log in memory instead of on disk: faster, and lost
	// if every NATS server restarts.
	Memory bool
	// MaxAge is how long the log keeps an entry. A node that falls behind
	// by more (cut off from NATS that long) must restart; nodes that start
	// later begin from a snapshot, saved far more often.
	MaxAge time.Duration
	// Duplicates is how long the stream remembers an entry's id to drop a
	// retried append. NATS keeps about 200 bytes per id for that long.
	Duplicates time.Duration
	// AppendTimeout bounds how long Append keeps trying, on top of its
	// context: use the node's apply timeout.
	AppendTimeout time.Duration
	// Settings describes the settings every node must share; the first
	// node records them in the stream, and a node with others is refused.
	Settings string
	// Logger gets connection changes.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of chatd's --nats-* flags.
func DefaultConfig() Config {
	return Config{Prefix: "chatd", Replicas: 1, MaxAge: time.Hour, Duplicates: 30 * time.Second, AppendTimeout: 10 * time.Second}
}

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// CheckPrefix says what is wrong with a prefix, if anything.
func CheckPrefix(p string) error {
	if !prefixPattern.MatchString(p) {
		return errors.New("want 1 to 32 letters, digits, '-' or '_'")
	}
	return nil
}

const (
	settingsKey    = "chatd-settings"
	snapshotObject = "snapshot"
)

// Log is a cluster's log in JetStream. It implements [server.Log].
type Log struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
	state   jetstream.ObjectStore
	logger  *slog.Logger
}

var _ server.Log = (*Log)(nil)

// Open connects to NATS and finds or creates the log's stream and object
// store. It fails if NATS cannot be reached, has no JetStream, or holds a
// log made with other settings.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := CheckPrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("bad NATS prefix %q: %v", cfg.Prefix, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name("chatd " + cfg.Name),
		nats.MaxReconnects(-1), // a node rides out NATS restarts
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// No publishing into a buffer while NATS is away: an append
		// either reaches NATS now or fails, and is retried (with its id)
		// only as long as its node waits for it.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("lost NATS", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("NATS error", "err", err)
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", redact(cfg.URLs), err)
	}
	l := &Log{cfg: cfg, nc: nc, subject: cfg.Prefix + ".log", logger: logger}
	if err := l.setUp(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) setUp(ctx context.Context) error {
	js, err := jetstream.New(l.nc)
	if err != nil {
		return err
	}
	l.js = js
	storage := jetstream.FileStorage
	if l.cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	name := l.cfg.Prefix + "_log"
	stream, err := js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        name,
			Description: "chatd's cluster log: every command of the chat, in order",
			Subjects:    []string{l.subject},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      l.cfg.MaxAge,
			Storage:     storage,
			Replicas:    l.cfg.Replicas,
			Duplicates:  l.cfg.Duplicates,
			Metadata:    map[string]string{settingsKey: l.cfg.Settings},
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			stream, err = js.Stream(ctx, name) // another node made it first
		}
		if err != nil {
			return fmt.Errorf("creating the stream %s in NATS: %w", name, describe(err))
		}
	case err != nil:
		return fmt.Errorf("looking for the stream %s in NATS: %w", name, describe(err))
	}
	if got := stream.CachedInfo().Config.Metadata[settingsKey]; got != l.cfg.Settings {
		return fmt.Errorf("the cluster %q runs with other settings: this node has\n  %s\nthe cluster has\n  %s\nevery node must run with the same (or use another --nats-prefix)", l.cfg.Prefix, l.cfg.Settings, got)
	}
	l.stream = stream
	l.state, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      l.cfg.Prefix + "_state",
		Description: "chatd's cluster state: the last snapshot, for nodes that start later",
		Storage:     jetstream.StorageType(storage),
		Replicas:    l.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating the object store %s_state in NATS: %w", l.cfg.Prefix, describe(err))
	}
	return nil
}

// describe adds what to do to the errors an operator can fix.
func describe(err error) error {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return fmt.Errorf("%w (start nats-server with -js)", err)
	}
	return err
}

// Close closes the connection to NATS.
func (l *Log) Close() { l.nc.Close() }

// Connected reports whether NATS is within reach.
func (l *Log) Connected() bool { return l.nc.IsConnected() }

// Append publishes data and waits for the stream's acknowledgement,
// retrying with the same id until ctx ends.
func (l *Log) Append(ctx context.Context, id string, data []byte) error {
	if l.cfg.AppendTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.AppendTimeout)
		defer cancel()
	}
	msg := &nats.Msg{Subject: l.subject, Data: data}
	for attempt := 0; ; attempt++ {
		_, err := l.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, time.Second)):
		}
	}
}

// LastSeq returns the stream's last sequence number.
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	var last uint64
	err := retryTimeouts(ctx, l.logger, "reading the log's end", func() error {
		info, err := l.stream.Info(ctx)
		if err == nil {
			last = info.State.LastSeq
		}
		return err
	})
	return last, err
}

// retryPatience is how long retryTimeouts goes on trying.
const retryPatience = time.Minute

// retryTimeouts calls read until it does not time out, for at most
// retryPatience or until ctx ends, and returns its last error. A node
// reads the log's ends and its snapshot as it starts: a NATS slow to
// answer for a few seconds (busy, or electing a stream leader) must not
// stop the node, as it would if the first timeout were final.
func retryTimeouts(ctx context.Context, logger *slog.Logger, what string, read func() error) error {
	deadline := time.Now().Add(retryPatience)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := read()
		if err == nil || !timedOut(err) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		logger.Warn(what+" in NATS timed out: trying again", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// timedOut reports whether err is a request to NATS that had no answer in
// time, rather than an answer.
func timedOut(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// Follow reads the stream from from on with an ordered consumer, and
// makes a new one whenever it fails, from the entry after the last one
// applied.
func (l *Log) Follow(ctx context.Context, from uint64, apply func(server.Entry) error) error {
	next := from
	for attempt := 0; ; attempt++ {
		err := l.follow(ctx, &next, apply)
		var applyErr applyError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &applyErr):
			return applyErr.err
		}
		if attempt == 0 || attempt%20 == 0 {
			l.logger.Warn("reading the cluster log failed; retrying", "from", next, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second)):
		}
	}
}

type applyError struct{ err error }

func (e applyError) Error() string { return e.err.Error() }

func (l *Log) follow(ctx context.Context, next *uint64, apply func(server.Entry) error) error {
	cons, err := l.js.OrderedConsumer(ctx, l.stream.CachedInfo().Config.Name, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   *next,
	})
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		if err := apply(server.Entry{Seq: meta.Sequence.Stream, Time: meta.Timestamp, ID: msg.Headers().Get(nats.MsgIdHdr), Data: msg.Data()}); err != nil {
			return applyError{err}
		}
		*next = meta.Sequence.Stream + 1
	}
}

// LoadSnapshot returns the saved snapshot, or nil if there is none.
func (l *Log) LoadSnapshot(ctx context.Context) ([]byte, error) {
	var data []byte
	err := retryTimeouts(ctx, l.logger, "reading the last snapshot", func() error {
		var err error
		data, err = l.state.GetBytes(ctx, snapshotObject)
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	return data, err
}

// SaveSnapshot replaces the saved snapshot.
func (l *Log) SaveSnapshot(ctx context.Context, _ uint64, data []byte) error {
	_, err := l.state.PutBytes(ctx, snapshotObject, data)
	return err
}

// FirstSeq returns the stream's first sequence number still kept.
func (l *Log) FirstSeq(ctx context.Context) (uint64, error) {
	var first uint64
	err := retryTimeouts(ctx, l.logger, "reading the log's start", func() error {
		info, err := l.stream.Info(ctx)
		if err == nil {
			first = info.State.FirstSeq
		}
		return err
	})
	return first, err
}

// redact keeps credentials out of URLs shown in logs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "***" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
