// Package chatclient is a Go client of chatd's chat.v1 API: it dials chatd
// the way chatd wants its clients dialled, joins the chat, hands over the
// events one at a time, and takes the session back when the connection
// breaks.
//
// Most programs want a [Client]:
//
//	c, err := chatclient.Connect(ctx, chatclient.Config{Servers: []string{"localhost:50051"}}, "alice")
//	if err != nil { ... }
//	defer c.Close()
//	for {
//		ev, err := c.Recv()
//		if err != nil { ... } // io.EOF after Leave; else why the session ended
//		...
//	}
//
// A Client reconnects on its own when its stream breaks (chatd restarting,
// a node of a cluster going away, a network blip): it tries the servers in
// turn from the one after the server it lost, with [Backoff] between rounds,
// and resumes the session with its resume token and the seq of the last
// event it handed over. The new welcome comes out of Recv like any other
// event; its Recovery says whether nothing was missed
// (RECOVERY_COMPLETE: the missed events follow) or the session's state
// starts afresh from the welcome's snapshot (RECOVERY_INCOMPLETE). A
// session away longer than chatd keeps it comes back as a new session, as
// a device of its user again if the user is still on another one (see
// below): the resume carries the device key too.
//
// One user may be in the chat on several devices at once (a laptop and a
// phone), each a Client of its own: the first device's welcome carries a
// device key ([Client.DeviceKey]), and a Client whose Config.DeviceKey is
// that key joins as another device of the same user rather than being
// refused the name. Every device gets the user's messages and channels,
// and [Client.MarkRead] marks a conversation read for all of them: each
// gets a Read event, and a new device learns what is unread from its
// welcome (UnreadPrivate) and its channels' ChannelJoined (Read).
//
// The pieces a Client is made of are exported for programs that keep their
// own state across reconnections (chatctl, chatbench): [Dial] connects to
// one server, [Open] dials and joins, giving a [Stream] whose Recv takes
// batches apart, and [Retry] goes round the servers with backoff.
//
// chatclient speaks the generated API in gen/chat/v1 and depends on
// nothing of chatd's server package, so a program using it links no server.
package chatclient
