package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/grpcdial"
)

// config is everything chatbench is told on its command line.
type config struct {
	// The chatd to measure: started from chatdPath (one, or a cluster of
	// nodes on a nats-server chatbench starts too), or attached to at
	// servers (one chatd, or the nodes of a cluster).
	chatdPath  string
	chatdArgs  []string // extra flags for every chatd chatbench starts
	nodes      int      // with chatdPath: 0 for one chatd, else a cluster of that many
	natsServer string   // with nodes: the nats-server binary ("": go.mod's tool)
	servers    []string // member i joins on servers[i % len(servers)]
	serverPIDs []int    // none (CPU and memory unavailable), or one per server, in order
	caFile     string   // "": plaintext; else TLS, trusting the CAs in it
	clientBDP  bool     // members use grpc-go's default windows (bandwidth-delay pings), not chatctl's fixed ones
	batches    bool     // members ask for several events per response (Join.accept_batches)
	// transport is how members reach chatd: "grpc" (native gRPC) or
	// "grpc-web" (the page's way: grpc-web over a websocket through
	// chatd's HTTP port, the gateway, at webServer when attached to a
	// running chatd).
	transport string
	webServer string
	// channels: 0, everyone in general and messages sent there; else
	// members are spread over that many channels besides general, and
	// each message goes to its sender's channel only.
	channels int

	// With nodes: restart node restartNode (from 1; 0: none) at restartAt
	// into the send phase (see restart.go).
	restartNode int
	restartAt   time.Duration

	members         int
	devices         int // sessions per member (see member.dev); 1: one
	senders         int // 0: join only (memory per idle session), or typing only
	window          int // saturated mode: unacknowledged messages per sender
	rate            float64
	duration        time.Duration
	joinConcurrency int
	conns           int // 0: one gRPC connection per member

	// Typing (see typing.go): typers members after the senders type in
	// their channel during the send phase, a refresh every typingEvery,
	// in bursts of typingFor with typingPause between them (0: without
	// pause, for the whole phase).
	typers      int
	typingEvery time.Duration
	typingFor   time.Duration
	typingPause time.Duration

	joinTimeout  time.Duration
	drainTimeout time.Duration
	idleWait     time.Duration
	cpuProfile   string // "": none; else chatbench's own CPU profile goes to this file

	baseline      bool
	baselineQueue int

	jsonOnly bool
	progress time.Duration // 0: no progress lines
}

// saturated reports whether senders send as fast as acknowledgements allow.
func (c *config) saturated() bool { return c.rate == 0 }

// sends reports whether the run has a send phase: messages, typing or both.
func (c *config) sends() bool { return c.senders > 0 || c.typers > 0 }

// sessions is how many sessions join: every device of every member.
func (c *config) sessions() int { return c.members * c.devices }

// chatdExtra is the flags for every chatd chatbench starts after its own:
// room for every member's devices, then --chatd-arg's, which may change it.
func (c *config) chatdExtra() []string {
	var args []string
	if c.devices > 1 {
		args = append(args, "--max-devices-per-user="+strconv.Itoa(c.devices))
	}
	return append(args, c.chatdArgs...)
}

// stringsFlag is a flag that may be repeated; each use adds one value.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// listFlag is a comma-separated list that may also be given by repeating
// the flag: --server a,b --server c is a, b, c. The values are checked by
// config.validate, which says which one is wrong.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.Split(v, ",")...)
	return nil
}

// pidsFlag is --server-pid: a process id per --server address, in the
// same order, comma-separated or repeated. It is mostly given as
// "$(pidof chatd)", which is empty when no chatd runs and holds every pid,
// space-separated and in no useful order, when several do; both get a word
// of their own rather than the flag package's "parse error".
type pidsFlag []int

func (p *pidsFlag) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, pid := range *p {
		s[i] = strconv.Itoa(pid)
	}
	return strings.Join(s, ",")
}

func (p *pidsFlag) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("no pid (is chatd running? pidof finds none)")
	}
	for item := range strings.SplitSeq(s, ",") {
		f := strings.Fields(item)
		switch len(f) {
		case 0:
			return fmt.Errorf("an empty pid in %q: want one pid per --server address, comma-separated", s)
		case 1:
		default:
			// pidof lists every chatd, newest first: not the order of
			// the --server addresses, so chatbench cannot pair them.
			return fmt.Errorf("%d pids, one per chatd running: give the one listening at --server (ss -ltnp shows which), e.g. --server-pid %s, or with several --server addresses their pids comma-separated in the same order", len(f), f[0])
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n <= 0 {
			return errors.New("not a pid: want a positive number, e.g. --server-pid \"$(pidof chatd)\"")
		}
		*p = append(*p, n)
	}
	return nil
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const about = `Usage: chatbench (--chatd PATH [--nodes N] | --server ADDR[,ADDR...] [--server-pid PID[,PID...]]) [flags]

chatbench drives a chatd over real sockets and measures it: --members
sessions join (each one broadcast to everyone already there), then --senders
of them send messages that every member receives, either as fast as
acknowledgements allow (--window unacknowledged messages per sender) or at a
fixed total --rate. It then runs the same fan-out over plain TCP with
length-prefixed frames (--baseline), so that chatd's throughput can be quoted
as a fraction of what the machine can do.

A cluster is measured by listing its nodes in --server, or started with
--chatd PATH --nodes N: chatbench then starts a nats-server with JetStream
and N chatd nodes on it, and stops them all at the end. Members join on the
nodes in turn (member i on node i mod N), senders too; every member must
still receive every message, in order, and every later join. The server's
CPU and memory are then the total over the nodes, and each node's are
reported apart, with the nats-server's if chatbench started it.

--restart-node K (with --nodes) measures a rolling restart: during the send
phase chatbench stops node K with SIGTERM and starts it again on the same
address. Members whose stream ends with UNAVAILABLE resume on the next node
with their resume token and the seq of the last event they got, and must
still receive every message once and in order; nobody may be seen to leave
or come back, and every resume must be complete. It reports how long until
everyone was back. A sender's messages in flight when its stream ended
count only if they reached the chat (their echo comes back after the
resume); the others were never sent.

--transport grpc-web has the members, senders included, connect as the
chat page does: grpc-web over a websocket through chatd's HTTP port (the
gateway); --chatd then gives chatd an HTTP port, and a running chatd's goes
in --web-server. --channels N spreads the members over N channels besides
general, each sender sending to its own: every message must reach its
channel's members, and them only.

--devices N has each member join on N devices, as a person with a laptop
and a phone does: the first joins as a new user, the others under the same
name with the device key of the first's welcome (Join.device_key), on
other nodes of a cluster where there are (device d of member i on node
(i+d) mod N). Each device is a session of its own, with its own seq, that
receives everything its member receives and is checked as a member is: a
message reaches members × N sessions, and the join storm is members × N
joins. Senders send from their first device. The report's per-session and
per-delivery figures are then per device, so that a run with --devices 2
against one with --devices 1 says what a second device costs. --chatd
starts chatd with --max-devices-per-user N.

--typers N has N members other than the senders type in their channel
(general, or theirs with --channels) for the whole send phase, as people
who type and do not send: a typing request every --typing-every (chatd
drops refreshes closer than 2 s), in bursts of --typing-for, each ended by
a stopped request, with --typing-pause between them (0: one burst for the
whole phase); each typer starts at a random point of its cycle, so that
the requests are spread out. Every session counts the typing events it
gets (unnumbered: they take no part in the seq checks), and after the
phase every session must be shown nobody typing. With --senders 0 the
run is typing only: what typing costs, in server CPU seconds per second
of the phase, beside a run with messages only. The baseline is not run.

Before the joins, a probe session checks that chatd answers and does not
refuse a burst of messages for its rate limit; a join refused for chatd's
limits per client address names the chatd flags that lift them. Either
fails the run at once.

It prints a summary, then the same figures as one JSON line (the last line
of its output). It exits 1 if a message was lost or duplicated (members the
server dropped as too slow are counted apart), with --restart-node if a
member was seen to leave or come back or could not resume complete, or if
the run could not be made; 2 on bad usage.

Flags:
`

// parseArgs reads the command line. On --help it prints the usage to stdout
// and returns flag.ErrHelp.
func parseArgs(args []string, stdout io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors go through run's one error path
	fs.Usage = func() {}
	fs.StringVar(&cfg.chatdPath, "chatd", "", "start the chatd binary at `path` on a free loopback port, with --message-rate 0, enough --max-sessions (and --max-devices-per-user for --devices) and no limits per client address, and stop it at the end")
	fs.Var((*stringsFlag)(&cfg.chatdArgs), "chatd-arg", "extra `flag` for the chatd that --chatd starts (every node of a --nodes cluster), e.g. --chatd-arg=--queue-size=4096 (repeatable; later flags override chatbench's)")
	fs.IntVar(&cfg.nodes, "nodes", 0, "with --chatd: start a cluster of `N` chatd nodes on a nats-server with JetStream that chatbench starts too (0: one chatd, no NATS)")
	fs.IntVar(&cfg.restartNode, "restart-node", 0, "with --nodes: restart node `K` (1 to N) during the send phase: SIGTERM, then the same chatd again on the same address; its members resume on the next node (0: none)")
	fs.DurationVar(&cfg.restartAt, "restart-at", -1, "with --restart-node: how long into the send phase the node gets SIGTERM (default: a third of --duration)")
	fs.StringVar(&cfg.natsServer, "nats-server", "", "with --nodes: the nats-server binary at `path` (default: go.mod's tool, as `go tool -n nats-server` run in the current directory finds it)")
	fs.Var((*listFlag)(&cfg.servers), "server", "measure the chatd already running at `addresses` (host:port), or the nodes of a cluster, comma-separated: member i joins on the i mod n-th; each must run with --message-rate 0 and, for more than 50 members, without the limits per client address ("+perAddressFlags+")")
	fs.BoolVar(&cfg.clientBDP, "client-bdp", false, "members use grpc-go's default flow control, which sends chatd a bandwidth-delay PING for nearly every message received when messages are sparse (each costs chatd a write), instead of chatctl's fixed windows")
	fs.StringVar(&cfg.transport, "transport", "grpc", "how members (senders too) reach chatd: `grpc` (native gRPC on its gRPC port) or grpc-web (as the chat page does: grpc-web over a websocket through chatd's HTTP port, the gateway; with --chatd, chatbench starts chatd with an HTTP address, with --server give it in --web-server)")
	fs.StringVar(&cfg.webServer, "web-server", "", "with --transport grpc-web and --server: the `address` (host:port) of that chatd's HTTP port (its --http-addr), where members open their websockets")
	fs.IntVar(&cfg.channels, "channels", 0, "spread members over `N` channels besides general (member i in channel c<i mod N>; sender k sends to its own channel, so each message reaches that channel's members only); --senders must be a multiple of N, so that --rate is spread evenly over the channels (0: everyone in general)")
	fs.BoolVar(&cfg.batches, "batches", true, "members ask chatd for several events per response when several are waiting (Join.accept_batches), as chatctl and the page do; --batches=false: one response per event, as a client that does not know batches gets")
	fs.StringVar(&cfg.caFile, "ca-file", "", "talk to chatd over TLS, trusting the CA certificates in this PEM `file` (start it with --chatd-arg=--tls-cert=… --chatd-arg=--tls-key=…); plaintext without it")
	fs.Var((*pidsFlag)(&cfg.serverPIDs), "server-pid", "`pids` of the chatd at --server, one per address in the same order, comma-separated, to read their CPU time and memory from /proc (without them they are unavailable); with one chatd running, \"$(pidof chatd)\" gives its pid; with several, pidof gives them all in no useful order")
	fs.IntVar(&cfg.members, "members", 100, "users that join (each on --devices sessions); every one receives every message")
	fs.IntVar(&cfg.devices, "devices", 1, "each member joins on `N` devices, each a session of its own that receives and checks everything the member does: the first joins as a new user, the others under the same name with its welcome's device key; senders send from their first device; on several nodes, device d of member i joins on the (i+d) mod n-th")
	fs.IntVar(&cfg.senders, "senders", 5, "members that send messages (0: only join, to measure memory per idle session)")
	fs.IntVar(&cfg.typers, "typers", 0, "members other than the senders (the next `N` after them) that type in their channel during the send phase, and never send (0: none; with --senders 0, a run of typing only)")
	fs.DurationVar(&cfg.typingEvery, "typing-every", 2*time.Second, "with --typers: how often each typer sends typing while it types (chatd drops refreshes closer than 2s)")
	fs.DurationVar(&cfg.typingFor, "typing-for", 6*time.Second, "with --typers: how long each burst of typing lasts; a stopped request ends it")
	fs.DurationVar(&cfg.typingPause, "typing-pause", 4*time.Second, "with --typers: how long a typer rests between bursts (0: it types for the whole send phase, then stops)")
	fs.IntVar(&cfg.window, "window", 16, "saturated mode: messages each sender may have sent but not yet seen echoed")
	fs.Float64Var(&cfg.rate, "rate", 0, "send this many `messages/s` in total across senders, instead of saturating (0: saturate)")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long senders send")
	fs.IntVar(&cfg.joinConcurrency, "join-concurrency", 64, "joins in flight at once")
	fs.IntVar(&cfg.conns, "conns", 0, "gRPC connections the members share, per server (0: one per member, which is what memory per session means)")
	fs.DurationVar(&cfg.joinTimeout, "join-timeout", time.Minute, "give up if joining and receiving every join takes longer")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 10*time.Second, "after sending, how long to wait for every member to receive every message")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write chatbench's own CPU profile (its members' gRPC clients) to `file`, for `go tool pprof`: on this machine the members share the cores with chatd")
	fs.DurationVar(&cfg.idleWait, "idle-wait", time.Second, "after the joins, how long members stay idle before the server's memory is read")
	fs.BoolVar(&cfg.baseline, "baseline", true, "also run the same fan-out over plain TCP in-process (--baseline=false to skip)")
	fs.IntVar(&cfg.baselineQueue, "baseline-queue-size", 1024, "frames that may wait for one baseline client before it is dropped as too slow (chatd's --queue-size default)")
	fs.BoolVar(&cfg.jsonOnly, "json-only", false, "print only the JSON line")
	fs.DurationVar(&cfg.progress, "progress", time.Second, "print progress to stderr this often (0: never)")

	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, about)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil, flag.ErrHelp
	}
	if err != nil {
		return nil, usageErrorf("%v (see --help)", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.channels > 0 {
		if set["baseline"] && cfg.baseline {
			return nil, usageErrorf("--baseline goes without --channels: the raw TCP baseline has one channel")
		}
		cfg.baseline = false
	}
	if cfg.typers > 0 {
		if set["baseline"] && cfg.baseline {
			return nil, usageErrorf("--baseline goes without --typers: the raw TCP baseline has no typing")
		}
		cfg.baseline = false
	} else {
		for _, f := range []string{"typing-every", "typing-for", "typing-pause"} {
			if set[f] {
				return nil, usageErrorf("--%s goes with --typers", f)
			}
		}
	}
	if cfg.restartNode > 0 {
		if set["baseline"] && cfg.baseline {
			return nil, usageErrorf("--baseline goes without --restart-node: the raw TCP baseline has no node to restart")
		}
		cfg.baseline = false
		if !set["restart-at"] {
			cfg.restartAt = cfg.duration / 3
		}
	} else if set["restart-at"] {
		return nil, usageErrorf("--restart-at goes with --restart-node")
	}
	if fs.NArg() > 0 {
		if _, err := strconv.Atoi(fs.Arg(0)); err == nil && len(cfg.serverPIDs) > 0 {
			// --server-pid $(pidof chatd), unquoted, with two chatd running.
			return nil, usageErrorf("unexpected argument %q: --server-pid takes one pid per --server address, comma-separated; with several chatd running, give the one listening at each (ss -ltnp shows which), e.g. --server-pid %d", fs.Arg(0), cfg.serverPIDs[0])
		}
		return nil, usageErrorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate reports every setting that cannot work, as a usage error.
func (c *config) validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	switch {
	case c.chatdPath == "" && len(c.servers) == 0:
		bad("say which chatd to measure: --chatd PATH to start one, or --server ADDR to use a running one")
	case c.chatdPath != "" && len(c.servers) > 0:
		bad("--chatd and --server exclude each other: start a chatd or attach to one")
	}
	seen := make(map[string]bool)
	for _, a := range c.servers {
		if err := grpcdial.CheckAddr(a); err != nil {
			bad("bad --server %q: %v; want host:port, e.g. --server %s", a, err, grpcdial.Example)
		} else if seen[a] {
			bad("--server lists %s twice: list each node once", a)
		}
		seen[a] = true
	}
	switch {
	case len(c.serverPIDs) > 0 && len(c.servers) == 0:
		bad("--server-pid goes with --server (chatbench knows the pid of a chatd it starts)")
	case len(c.serverPIDs) > 0 && len(c.serverPIDs) != len(c.servers):
		bad("--server-pid has %d pids for %d --server addresses: give one per address, in the same order", len(c.serverPIDs), len(c.servers))
	}
	seenPID := make(map[int]bool)
	for _, p := range c.serverPIDs {
		if seenPID[p] {
			bad("--server-pid lists %d twice: each chatd has its own", p)
		}
		seenPID[p] = true
	}
	if len(c.chatdArgs) > 0 && c.chatdPath == "" {
		bad("--chatd-arg goes with --chatd")
	}
	switch {
	case c.nodes < 0:
		bad("--nodes must be 0 (one chatd, no NATS) or positive, got %d", c.nodes)
	case c.nodes > 0 && c.chatdPath == "":
		bad("--nodes goes with --chatd (to measure a cluster that is already running, list its nodes in --server)")
	}
	if c.natsServer != "" && c.nodes == 0 {
		bad("--nats-server goes with --nodes")
	}
	switch {
	case c.restartNode < 0:
		bad("--restart-node must be a node's number, from 1, or 0 for none; got %d", c.restartNode)
	case c.restartNode == 0:
	case c.nodes < 2:
		bad("--restart-node needs --chatd and --nodes 2 or more: chatbench restarts a node it started, and its members move to another")
	case c.restartNode > c.nodes:
		bad("--restart-node %d: there are only %d nodes (n1 to n%d)", c.restartNode, c.nodes, c.nodes)
	case c.senders == 0:
		bad("--restart-node restarts a node during the send phase: give --senders 1 or more")
	case c.restartAt < 0 || c.restartAt >= c.duration:
		bad("--restart-at must be at least 0 and less than --duration (%s), got %s", c.duration, c.restartAt)
	}
	switch c.transport {
	case "grpc":
		if c.webServer != "" {
			bad("--web-server goes with --transport grpc-web")
		}
	case "grpc-web":
		switch {
		case c.nodes > 0 || len(c.servers) > 1:
			bad("--transport grpc-web measures one chatd: not with --nodes or several --server addresses")
		case len(c.servers) == 1 && c.webServer == "":
			bad("--transport grpc-web with --server needs --web-server, the address of that chatd's HTTP port (its --http-addr)")
		case c.chatdPath != "" && c.webServer != "":
			bad("--web-server goes with --server: chatbench starts chatd with an HTTP port of its own")
		}
		if c.webServer != "" {
			if err := grpcdial.CheckAddr(c.webServer); err != nil {
				bad("bad --web-server %q: %v; want host:port, e.g. --web-server localhost:8080", c.webServer, err)
			}
		}
		if c.conns > 0 || c.clientBDP || c.caFile != "" {
			bad("--conns, --client-bdp and --ca-file go with --transport grpc: each grpc-web member has its own plaintext websocket")
		}
	default:
		bad("--transport must be grpc or grpc-web, got %q", c.transport)
	}
	switch {
	case c.channels < 0:
		bad("--channels must be 0 (everyone in general) or positive, got %d", c.channels)
	case c.channels == 0:
	case c.members < c.channels:
		bad("--channels %d: fewer --members (%d) than channels", c.channels, c.members)
	case c.senders%c.channels != 0:
		bad("--senders (%d) must be a multiple of --channels (%d), so that every channel has as many senders and --rate is spread evenly", c.senders, c.channels)
	case c.restartNode > 0:
		bad("--channels goes without --restart-node")
	}
	if c.members < 1 {
		bad("--members must be at least 1, got %d", c.members)
	}
	if c.devices < 1 {
		bad("--devices must be at least 1 (one session per member), got %d", c.devices)
	}
	if c.senders < 0 || c.senders > c.members {
		bad("--senders must be between 0 and --members (%d), got %d", c.members, c.senders)
	}
	switch {
	case c.typers < 0 || c.typers > c.members-max(c.senders, 0):
		bad("--typers must be between 0 and --members less --senders (%d), got %d", max(c.members-max(c.senders, 0), 0), c.typers)
	case c.typers == 0:
	case c.restartNode > 0:
		bad("--typers goes without --restart-node")
	case c.typingEvery <= 0 || c.typingFor <= 0:
		bad("--typing-every and --typing-for must be positive, got %s and %s", c.typingEvery, c.typingFor)
	case c.typingPause < 0:
		bad("--typing-pause must be 0 (no pause) or positive, got %s", c.typingPause)
	}
	if c.window < 1 {
		bad("--window must be at least 1, got %d", c.window)
	}
	if c.rate < 0 || c.rate != c.rate {
		bad("--rate must be 0 (saturate) or positive, got %g", c.rate)
	}
	if c.sends() && c.duration <= 0 {
		bad("--duration must be positive, got %s", c.duration)
	}
	if c.joinConcurrency < 1 {
		bad("--join-concurrency must be at least 1, got %d", c.joinConcurrency)
	}
	if c.conns < 0 {
		bad("--conns must be 0 (one per member) or positive, got %d", c.conns)
	}
	if c.joinTimeout <= 0 || c.drainTimeout <= 0 {
		bad("--join-timeout and --drain-timeout must be positive, got %s and %s", c.joinTimeout, c.drainTimeout)
	}
	if c.idleWait < 0 || c.progress < 0 {
		bad("--idle-wait and --progress must not be negative, got %s and %s", c.idleWait, c.progress)
	}
	if c.baselineQueue < 1 {
		bad("--baseline-queue-size must be at least 1, got %d", c.baselineQueue)
	}
	if len(errs) > 0 {
		return usageErrorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
