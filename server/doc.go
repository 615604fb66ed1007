// Package server is chatd's chat service as a library: the hub that keeps who
// is online and orders every event, the per-session queues and writers, and
// the gRPC handlers of chat.v1.ChatService.
//
// Where things happen:
//   - a join: [Service.Chat] reads the first request, [Hub.Join] admits it;
//   - a message: the session's read loop in service.go calls [Hub.Send];
//   - a disconnect: [Service.Chat] sees the stream's context end and calls
//     [Hub.Leave] with LEAVE_REASON_DISCONNECTED.
//
// Every broadcast event takes the next number of one counter under the hub's
// lock and is queued, under that same lock, on every session's bounded queue
// without blocking. Each session has one writer goroutine, the only caller of
// Send on its stream. A session whose queue is full is dropped as too slow, so
// one slow client never holds up the others.
package server
