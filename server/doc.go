// Package server is chatd's chat service: the hub that keeps who is online
// and orders every event, the per-stream queues and writers, the gRPC
// handlers of chat.v1.ChatService, and a node's part in a cluster.
//
// It is what cmd/chatd runs, and a program of another module can use it
// the same way: build a [Server] with [New], its limits ([Config], and
// [ClientLimits] for each client address) and options ([WithTLS], and
// [WithAuth] for sign-in, with a [NewVerifier]), serve it, and put a front
// of its own before it, as chatd's gateway does for browsers
// ([Server.GRPCServer], and [Server.Admission]'s [Limiter] with
// [NewClientContext], so that its clients count against their own
// limits). Where an exported name needs a type of one of the module's
// internal packages, this package gives that type a name of its own
// ([ClientLimits], [Limiter], [Verifier]), so that nothing it exports is
// out of another module's reach. [NewCluster] takes any [Log]: chatd's own
// (on disk, in NATS JetStream) are internal packages, so another module
// brings its own. Beside those, the package exports the checks of names
// and text; the hub's own types (hub, stream,
// event, delivery, service) are unexported, and the package's tests, which
// drive a hub with no transport, get them under exported names from
// export_test.go.
//
// Where things happen:
//   - a join: service.Chat reads the first request (admitJoin), checks
//     the sign-in (signIn), and hub.join makes it a command, which the
//     node appends to the chat's log and waits for; once the log has it,
//     [Cluster] applies it, and joinLocked (apply.go) admits it: a new
//     user, or another device of one (addDeviceLocked);
//   - a message: the stream's read loop (readLoop, service.go) hands it
//     to handle, which calls hub.sendPipelined: that returns once the log
//     has the command, without waiting for it to be applied, so that the
//     stream's next request follows it in the log; sendLocked (apply.go)
//     gives it to every session it goes to (publishLocked, deliver.go),
//     queuing it for each one's stream on this node, and each of those
//     streams' writer (writeLoop, writer.go) sends it; a refusal met in
//     sendLocked reaches the sender as a rejected answer (tests have
//     hub.Send, which waits for it, from export_test.go);
//   - a channel entered or left: handle calls hub.JoinChannel or
//     hub.LeaveChannel, which wait for the command to be applied
//     (joinChannelLocked, leaveChannelLocked); a new channel past
//     --max-channels takes the place of the one empty longest
//     (makeRoomLocked, channel.go);
//   - a disconnect: serve (service.go) sees the stream's context end and
//     calls hub.Leave with LEAVE_REASON_DISCONNECTED; leaveLocked parks
//     the session for the resume grace (parkLocked, presence.go);
//   - a node gone silent, in a cluster: each node appends a heartbeat ten
//     times per node timeout (heartbeatLoop, nodes.go); every node,
//     applying the log, notes each command's node as heard from
//     (heardLocked), gives up for dead those silent for the node timeout
//     (checkNodesLocked), and parks their users as disconnected
//     (nodeDownLocked);
//   - a call refused before any session (a stream past the waiting room's
//     limits, a list call past its rate, a join refused): the tap in
//     refuse.go refuses what it can before gRPC starts a handler, and
//     refuseFrom counts every such refusal against its address's budget
//     (a sign-in refused: authenticator.refuseSignIn, auth.go).
//
// Every change is a command applied under the hub's lock, one at a time, in
// the order of the chat's log (see [Cluster]): a node's own, or the log that
// every node of a cluster applies alike. An event is given, under that lock,
// to every session it concerns, and queued for their streams on bounded
// queues without blocking. Each stream has one writer goroutine
// (writeLoop, writer.go), the only caller of Send on it. A stream whose
// queue is full is dropped as too slow, so one slow client never holds up
// the others. Which lock
// may be taken under which is written down in LOCKS.md, beside this file.
//
// Each file holds one concern and is named for it (the Layout in
// docs/development.md lists them). A test file is named for the concern it tests, and says how:
// <concern>_test.go tests it from outside, over real gRPC streams as a
// client sees it wherever there is a stream to test, and
// <concern>_hub_test.go tests the same concern on a hub driven directly,
// with no transport, so that the two sort side by side (channel_test.go
// and channel_hub_test.go; chat_test.go and chat_hub_test.go for the
// basics: join, send, leave). Their helpers are helpers_test.go and
// helpers_hub_test.go. Benchmarks are named by the same rule:
// bench_test.go over gRPC, bench_hub_test.go on a hub alone, and
// refuse_bench_test.go for what a refused call costs.
//
// # Glossary
//
// The words as this code uses them, each with one meaning; the names in
// the code say the same. Wire names (proto/, metric names and label
// values) are not the code's to change: where one says something else,
// the entry says so.
//
//   - user: someone in the chat under a username (chatv1.User: the name
//     as typed, and when they came online), on one device or several.
//     Names are unique in any letter case and among lookalikes: a user is
//     known by its key, the case-mapped name, and its lookalike skeletons.
//     The hub keeps each user as a person (person.go): its name, its
//     channels, its place on the online list and its devices' sessions.
//     Others hear of users, not devices: user_joined when the first
//     device comes online, user_left when the last one goes.
//   - device: one of a user's sessions, seen from the user's side (a
//     laptop, a phone). A join of a taken name is another device of its
//     user if it shows the user's device key (person.deviceHash; the
//     first device's welcome carries the key) or is signed in as the
//     user (clusterv1.Join.signed_in); otherwise it is refused
//     (ErrUsernameTaken). At most Config.MaxDevicesPerUser
//     (ErrTooManyDevices). "client" is the program at the far end of a
//     stream, and, in the limits, its address (netip.Addr).
//   - session: one device's lasting presence, which outlives its
//     streams: its numbered events (seq), its resume token, its replay
//     (session, session.go). Its user's channels and messages reach it
//     as they reach the user's other sessions. The hub keeps every
//     session, online, held or parked (sessionState), by the hash of its
//     token (hub.byToken), and every person by key (hub.byKey).
//   - stream: one Chat call (chatv1.ChatService_ChatServer), from the
//     join to its end, and stream (stream.go), its attachment to a
//     session on the node it is on: its queue, and how the hub ended it.
//     A new stream comes with each stream that joins or resumes; a session
//     has at most one (session.stream). A stream is numbered by the chat's
//     attach count (session.attach, stream.attach), and commands name it
//     by user key and that number (clusterv1.Stream). "attachment" and
//     "stream" name the same thing.
//   - member: a user in a channel (channel.members). clusterv1.Member
//     is, on the wire, a session as a cluster snapshot keeps it.
//   - conversation: a channel's messages, or the private messages
//     between two users: what the archive keeps and History pages (conv,
//     see channelConv and privateConv). The live protocol has no such
//     word: a message has a channel or a recipient.
//   - command: a change a node asks the chat for (clusterv1.Command: a
//     join, a leave, a message, a channel entered or left, a heartbeat, a
//     node's stop), stamped with the node and an id (hub.command), and
//     appended to the log. Nothing changes the chat's state but a
//     command applied.
//   - Event: what a session is told (a chatv1.ChatResponse: a welcome, a
//     user joined or left, a message, …). event is one event encoded
//     once and shared by every session it goes to; a delivery is an
//     event with its seq in one session. Answers to one request (a
//     rejection, a channel list) are delivered too, with seq 0: they are
//     not events of the session and are not kept for a resume.
//   - catch-up: what a stream is given at once so that it knows where
//     things stand: its welcome (who is online), a channel's members and
//     history (channelCatchUpLocked), a resume's replay. It is queued
//     with queue.pushCatchUp, so that it does not count against the
//     queue's limit while the stream is forgiving (stream.forgive), and
//     the stream's reader waits until the writer has taken it
//     (queue.catchUpTaken) before it reads the next request. On /metrics,
//     chatd_resumes_total still names a resume that got a fresh one
//     "snapshot" (resumeIncomplete): label values are not renamed.
//   - snapshot: the chat's whole state at a position of the log
//     (clusterv1.Snapshot, snapshot.go), saved so that a node starts from
//     it instead of the log's start.
//   - node: one chatd process taking part in a chat: it appends its
//     streams' commands to the log and applies the whole log to its own
//     hub. Its id is new with each run (hub.node, [Cluster.Node]); its name
//     labels what it logs. A chatd of its own is a cluster of one node, and
//     [Cluster] is a node's part in the log even then.
//   - log: the chat's ordered log of commands ([Log], [Entry]): memLog
//     in memory, internal/disklog on disk, internal/jslog for a cluster.
//     The server's text output goes through a *slog.Logger, always named
//     logger (service.logger, Cluster.logger).
//   - replay: a session's last numbered events, kept so that a stream
//     that resumes is given what it missed (session.replay, an
//     eventBuffer: see ring.go), bounded by Config.ResumeBuffer and
//     ResumeBufferBytes; what such a stream is given is a resume's replay.
//   - hub: hub, one node's copy of the chat's state (sessions, channels,
//     the online list, the deadlines) under one mutex, together with this
//     node's side of it: the streams attached here, and their queues. It
//     is both the state machine and the fan-out; the state machine alone
//     is reached through export_test.go's Machine.
//   - apply: carry out one entry of the log on the hub (Cluster.apply,
//     then hub.applyLocked and the …Locked function of its kind, in
//     apply.go). Applying depends only on the state and the entry (its
//     time is the chat's clock), so every node reaches the same state.
//     Distinct from append, which puts a command in the log.
//   - join, leave: a user's stream joins the chat (hub.Join,
//     joinLocked) and leaves it: the Leave command (hub.Leave,
//     leaveLocked; service.leave logs and counts it, in
//     chatd_leaves_total). On a logout the session is forgotten; otherwise
//     it is parked. A channel is entered and left with the word channel
//     always beside it (hub.JoinChannel, hub.LeaveChannel; the
//     membership itself: enterLocked, exitLocked).
//   - end: a stream ends when its Chat call returns; the hub ends one
//     itself (stream.endLocked: too slow, replaced by a resume, shutdown,
//     its node cut off). A stream's end is not its session's: the session
//     goes on, parked, held or on another stream, until it is forgotten.
//   - online, held, parked: where a session stands (sessionState). Online:
//     a stream is attached. Held: its node stopped on purpose; it keeps
//     its user on the online list, unannounced, while its client
//     reconnects elsewhere (holdLocked; hub.held counts them). Parked: its
//     stream ended without a logout, and it is kept for a resume
//     (parkLocked); if it was its user's last session online or held,
//     others were told the user left. A user is online (person.online,
//     on the list: person.listed) while one of its sessions is online or
//     held. Held and parked last until a deadline (expireLocked).
//     "held" means only this state: the time a command holds the hub's
//     lock is metrics.lockTime (chatd_hub_lock_held_seconds, a name that
//     stays).
//   - forget: end a session for good, its token free again, and with its
//     user's last session the user, its name free (forgetLocked): on a
//     logout, when its deadline passes, or at once on a disconnect if
//     there is no resume grace. A node
//     that gives up on a command it appended stops waiting for it
//     (Cluster.stopWaiting); nothing else is forgotten.
//   - refuse: answer a request with an [Error] instead of carrying it
//     out; refusals are counted in chatd_refusals_total
//     (metrics.refused). service.refuse counts a call's; refuseFrom (and
//     refuseStatus, and authenticator.refuseSignIn for a sign-in) counts
//     a call refused before any session against its address's budget too
//     (refuse.go). The tap's few refusals are made once (cannedRefusal).
//     In a session, a request refused is answered with a rejection
//     (hub.Reject). A command this node never appended is settled with its
//     refusal as its outcome (Cluster.settleUnappended).
//   - release: give back what admission counted: a session's count
//     against its client address (releaseLocked), a stream's place in the
//     waiting room (roomTicket.release).
//   - gate: what this node's streams' commands pass on their way to the
//     log (gate.pass, then gate.passed once appended); shut for a stop,
//     or for a moment while streams cut off end (gate.shut, gate.shutBy).
package server
