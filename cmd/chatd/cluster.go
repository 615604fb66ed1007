package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/archive"
	"github.com/chatd/chatd/internal/disklog"
	"github.com/chatd/chatd/internal/jslog"
	"github.com/chatd/chatd/server"
)

// clusterConfig is how chatd takes part in a cluster, if --nats-url says
// it does.
type clusterConfig struct {
	nats    jslog.Config
	node    server.ClusterConfig
	storage string
	// seedFrom is the data directory of a chatd, stopped, whose chat a
	// new cluster starts from (see seed).
	seedFrom string
}

// addClusterFlags adds the flags of cluster mode.
func addClusterFlags(fs *flag.FlagSet, cfg *config) {
	cfg.cluster = clusterConfig{nats: jslog.DefaultConfig(), node: server.DefaultClusterConfig(), storage: "file"}
	jc, nc := &cfg.cluster.nats, &cfg.cluster.node
	fs.StringVar(&jc.URLs, "nats-url", "", "comma-separated `URLs` of NATS servers with JetStream (nats://host:4222,nats://other:4222): run as a node of a cluster, whose nodes share every user, channel and message through NATS. Empty (the default): one server, its chat kept in --data-dir (or in memory with --memory)")
	fs.StringVar(&jc.Prefix, "nats-prefix", jc.Prefix, "`name` of what the cluster keeps in NATS (the stream <name>_log and the object store <name>_state), so that several chat clusters can share one NATS")
	fs.StringVar(&jc.CredsFile, "nats-creds", "", "NATS credentials `file` (user JWT and NKey seed), if NATS asks for one")
	fs.StringVar(&jc.CAFile, "nats-ca", "", "`file` of the CA certificates that sign NATS's, for TLS to NATS (tls:// URLs); the system's roots if empty")
	fs.StringVar(&jc.CertFile, "nats-cert", "", "client certificate `file` for TLS to NATS, if NATS asks for one (with --nats-key)")
	fs.StringVar(&jc.KeyFile, "nats-key", "", "client key `file` that goes with --nats-cert")
	fs.IntVar(&jc.Replicas, "nats-replicas", jc.Replicas, "copies of the cluster's log that NATS keeps: 1, or 3 or 5 on a NATS cluster of at least that many servers")
	fs.StringVar(&cfg.cluster.storage, "nats-storage", cfg.cluster.storage, "where NATS keeps the cluster's log: file (survives restarting NATS) or memory")
	fs.DurationVar(&jc.MaxAge, "nats-log-age", jc.MaxAge, "how long the cluster's log keeps a command; a node cut off from NATS for longer must be restarted (nodes start from a snapshot, saved every --snapshot-interval)")
	fs.StringVar(&nc.Name, "node-name", "", "this node's `name`, in its logs and in NATS's list of connections; empty for the machine's host name")
	fs.DurationVar(&nc.NodeTimeout, "node-timeout", nc.NodeTimeout, "how long a node may go unheard, NATS being up, before the others take it for dead and announce its users as disconnected; nodes say they are alive ten times in that time")
	fs.DurationVar(&nc.SnapshotEvery, "snapshot-interval", nc.SnapshotEvery, "how often one node saves the chat's state in NATS, for nodes that start later")
	fs.StringVar(&cfg.cluster.seedFrom, "seed-from", "", "grow a chatd of its own into a cluster: hand the chat kept in this data `directory` (its chatd stopped) to the new cluster on --nats-url, as the state its nodes start from, and exit; then start the nodes without it")
}

// clusterFlags are the flags that only mean something with --nats-url.
var clusterFlags = []string{"nats-prefix", "nats-creds", "nats-ca", "nats-cert", "nats-key", "nats-replicas", "nats-storage", "nats-log-age", "node-name", "node-timeout", "snapshot-interval", "seed-from"}

// checkCluster checks the cluster flags, and finishes cfg.cluster.
func checkCluster(fs *flag.FlagSet, cfg *config) error {
	cc := &cfg.cluster
	if cc.nats.URLs == "" {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			for _, name := range clusterFlags {
				if f.Name == name {
					set = append(set, "--"+name)
				}
			}
		})
		if len(set) > 0 {
			return fmt.Errorf("%s only mean something in a cluster: add --nats-url, or leave them out", strings.Join(set, ", "))
		}
		return nil
	}
	var errs []error
	for _, u := range strings.Split(cc.nats.URLs, ",") {
		if u = strings.TrimSpace(u); u == "" || !strings.Contains(u, "://") && strings.Contains(u, "/") {
			errs = append(errs, fmt.Errorf("--nats-url has a bad URL %q; want nats://host:port (or tls://host:port), comma-separated", u))
		}
	}
	if err := jslog.CheckPrefix(cc.nats.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("--nats-prefix %q: %v", cc.nats.Prefix, err))
	}
	switch cc.nats.Replicas {
	case 1, 3, 5:
	default:
		errs = append(errs, fmt.Errorf("--nats-replicas must be 1, 3 or 5, got %d", cc.nats.Replicas))
	}
	switch cc.storage {
	case "file":
	case "memory":
		cc.nats.Memory = true
	default:
		errs = append(errs, fmt.Errorf("--nats-storage must be file or memory, got %q", cc.storage))
	}
	if (cc.nats.CertFile == "") != (cc.nats.KeyFile == "") {
		errs = append(errs, errors.New("--nats-cert and --nats-key go together: set both or neither"))
	}
	if cc.nats.MaxAge < time.Minute || cc.nats.MaxAge < 2*cc.node.SnapshotEvery {
		errs = append(errs, fmt.Errorf("--nats-log-age must be at least 1m and twice --snapshot-interval (%s), got %s", cc.node.SnapshotEvery, cc.nats.MaxAge))
	}
	if cc.node.Name == "" {
		if cc.node.Name, _ = os.Hostname(); cc.node.Name == "" {
			cc.node.Name = "chatd"
		}
	}
	if err := cc.node.Validate(); err != nil {
		var se *server.SettingError
		if errors.As(err, &se) {
			name := map[string]string{"NodeTimeout": "--node-timeout", "SnapshotEvery": "--snapshot-interval", "ApplyTimeout": "apply timeout"}[se.Field]
			err = errors.New(se.Describe(func(string) string { return name }))
		}
		errs = append(errs, err)
	}
	cc.nats.Name = cc.node.Name
	cc.nats.AppendTimeout = cc.node.ApplyTimeout
	cc.nats.Settings = server.ClusterSettings(cfg.server, cc.node)
	return errors.Join(errs...)
}

// newServer builds the server cfg asks for: a chatd of its own, its chat
// kept in --data-dir (the directory locked, its log checked) or in memory,
// or a node of the cluster on NATS (connected, its log found or made).
// closeLog closes the log (the data directory, or the connection to
// NATS), once the server is done with it.
func newServer(ctx context.Context, cfg config, log, clientLog *slog.Logger, opts ...server.Option) (srv *server.Server, closeLog func(), err error) {
	if cfg.cluster.nats.URLs == "" && cfg.memory {
		srv, err = server.New(cfg.server, clientLog, opts...)
		return srv, func() {}, err
	}
	if cfg.cluster.nats.URLs == "" {
		return newSolo(cfg, log, clientLog, opts...)
	}
	l, err := openNATS(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if srv, err = server.NewCluster(cfg.server, cfg.cluster.node, l, clientLog, opts...); err != nil {
		l.Close()
		return nil, nil, err
	}
	log.Info("cluster node", "name", cfg.cluster.node.Name, "id", srv.Cluster().Node(), "nats_prefix", cfg.cluster.nats.Prefix)
	return srv, l.Close, nil
}

// newSolo builds a chatd of its own whose chat is kept in --data-dir.
func newSolo(cfg config, log, clientLog *slog.Logger, opts ...server.Option) (*server.Server, func(), error) {
	dir, err := filepath.Abs(cfg.dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("--data-dir %q: %w", cfg.dataDir, err)
	}
	l, err := disklog.Open(disklog.Config{Dir: dir, SyncEvery: cfg.fsyncInterval, Logger: log.With("data_dir", dir)})
	if err != nil {
		return nil, nil, err
	}
	arc, err := archive.Open(archive.Config{Dir: filepath.Join(dir, "archive"), MaxAge: cfg.historyAge, MaxBytes: cfg.historyDiskBytes, Logger: log.With("data_dir", dir)})
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	ccfg := server.SoloConfig()
	if name, _ := os.Hostname(); name != "" {
		ccfg.Name = name
	}
	srv, err := server.NewCluster(cfg.server, ccfg, l, clientLog, append(opts, server.WithArchive(arc))...)
	if err != nil {
		arc.Close()
		l.Close()
		return nil, nil, err
	}
	return srv, func() {
		if err := arc.Close(); err != nil {
			log.Warn("closing the archive", "err", err)
		}
		if err := l.Close(); err != nil {
			log.Warn("closing the data directory", "err", err)
		}
	}, nil
}

// openNATS connects to the cluster's NATS and finds or makes its log.
func openNATS(ctx context.Context, cfg config, log *slog.Logger) (*jslog.Log, error) {
	jc := cfg.cluster.nats
	jc.Logger = log.With("nats", jc.Prefix)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return jslog.Open(ctx, jc)
}

// seed hands the chat a chatd kept in its data directory (--seed-from) to
// a new cluster on NATS: the chat's state once its whole log is applied
// becomes the snapshot the cluster's nodes start from. The chatd must be
// stopped (its directory is locked while it runs), and the cluster new:
// a cluster's chat is never replaced.
func seed(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	dir, err := filepath.Abs(cfg.cluster.seedFrom)
	if err != nil {
		return fmt.Errorf("--seed-from %q: %w", cfg.cluster.seedFrom, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err != nil {
		return fmt.Errorf("--seed-from %s: not a chatd data directory (it has no log): %w", dir, err)
	}
	dl, err := disklog.Open(disklog.Config{Dir: dir, Logger: log.With("data_dir", dir)})
	if err != nil {
		return fmt.Errorf("--seed-from: %w", err)
	}
	defer dl.Close()
	jl, err := openNATS(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer jl.Close()
	jc := cfg.cluster.nats
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	last, err := jl.LastSeq(octx)
	if err != nil {
		return fmt.Errorf("reading the cluster's log: %w", err)
	}
	snap, err := jl.LoadSnapshot(octx)
	if err != nil {
		return fmt.Errorf("reading the cluster's state: %w", err)
	}
	if last > 0 || snap != nil {
		return fmt.Errorf("the cluster %q on NATS already holds a chat (its log is at entry %d): --seed-from only starts a new cluster, it never replaces a chat. Seed a cluster of another --nats-prefix, or remove this one's stream %s_log and object store %s_state first", jc.Prefix, last, jc.Prefix, jc.Prefix)
	}
	data, sum, err := server.SeedState(ctx, cfg.server, cfg.cluster.node, dl, log.With("data_dir", dir))
	if err != nil {
		return fmt.Errorf("--seed-from %s: %w", dir, err)
	}
	if err := jl.SaveSnapshot(octx, 0, data); err != nil {
		return fmt.Errorf("saving the chat in NATS: %w", err)
	}
	fmt.Fprintf(stdout, "chatd: handed the chat of %s (%d users, %d channels, %d messages, %d log entries) to the cluster %q on NATS: start its nodes without --seed-from\n", dir, sum.Users, sum.Channels, sum.Messages, sum.Entries, jc.Prefix)
	return nil
}
