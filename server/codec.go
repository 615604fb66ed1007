package server

import (
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Event is one event queued for a session: the response, and its protobuf
// encoding made once when it was published. A broadcast to N sessions is
// marshalled once, not N times; every writer sends the same bytes.
type Event struct {
	resp *chatv1.ChatResponse
	wire mem.BufferSlice // proto encoding of resp; nil to marshal at send time
}

// privateEvent wraps a response for one session only. It is not encoded
// ahead: its one writer has the codec marshal it, outside the hub's lock.
func privateEvent(resp *chatv1.ChatResponse) *Event {
	return &Event{resp: resp}
}

// newEvent encodes resp for a broadcast; resp must never be modified
// afterwards.
func newEvent(resp *chatv1.ChatResponse) *Event {
	b, err := proto.Marshal(resp)
	if err != nil {
		// Cannot happen for what the hub builds (every string was checked
		// as UTF-8 on the way in). If it did, wireCodec marshals resp at
		// send time and the error reaches that one stream.
		return &Event{resp: resp}
	}
	// Built once here, not per delivery: wireCodec hands this same slice
	// to every stream, so a delivery allocates nothing of ours. A
	// SliceBuffer's Free does nothing, so no stream can recycle the bytes
	// while others still send them.
	return &Event{resp: resp, wire: mem.BufferSlice{mem.SliceBuffer(b)}}
}

// Response returns the event as a message. It is shared by every session
// that receives the event: do not modify it.
func (e *Event) Response() *chatv1.ChatResponse { return e.resp }

// wireCodec is the server's gRPC codec: it sends an *Event as the bytes
// encoded at publish time and handles every other message as the standard
// proto codec does.
type wireCodec struct {
	proto encoding.CodecV2
}

func newWireCodec() wireCodec {
	return wireCodec{proto: encoding.GetCodecV2(protoenc.Name)}
}

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*Event); ok {
		if e.wire == nil {
			return c.proto.Marshal(e.resp)
		}
		return e.wire, nil
	}
	return c.proto.Marshal(v)
}

func (c wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// Name is "proto": on the wire this is the standard protobuf encoding.
func (c wireCodec) Name() string { return protoenc.Name }
