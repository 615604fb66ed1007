// Package server is chatd's chat service as a library: the hub that keeps who
// is online and orders every event, the per-session queues and writers, the
// gRPC handlers of chat.v1.ChatService, and a node's part in a cluster.
//
// Where things happen:
//   - a join: [Service.Chat] reads the first request, [Hub.Join] makes it a
//     command, and joinLocked (apply.go) admits it;
//   - a message: the session's read loop in service.go calls [Hub.Send], and
//     sendLocked delivers it;
//   - a disconnect: [Service.Chat] sees the stream's context end and calls
//     [Hub.Leave] with LEAVE_REASON_DISCONNECTED; leaveLocked parks the
//     session;
//   - a call refused before any session (a stream past the waiting room's
//     limits, a list call past its rate, a join refused): the tap in
//     refuse.go refuses what it can before gRPC starts a handler, and
//     refuseFrom counts every such refusal against its address's budget.
//
// Every change is a command applied under the hub's lock, one at a time, in
// the order of the chat's log (see [Cluster]): a node's own, or the log that
// every node of a cluster applies alike. An event is queued, under that lock,
// on every session it concerns, on bounded queues and without blocking.
// Each session has one writer goroutine, the only caller of Send on its
// stream. A session whose queue is full is dropped as too slow, so one slow
// client never holds up the others.
package server
