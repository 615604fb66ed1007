package server

import (
	"fmt"
	"slices"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// event is something that happened, as one or more sessions receive it. A
// broadcast keeps only its protobuf encoding, made once when it was
// published: a broadcast to N sessions is marshalled once, not N times,
// every writer sends the same bytes behind its own seq (see delivery),
// and an event kept in replays and histories costs its bytes once, not
// its bytes and its decoded message too. An answer for one session keeps
// its message instead, which its writer marshals outside the hub's lock.
type event struct {
	resp *chatv1.ChatResponse // for one session: Seq and History never set; nil once encoded
	wire []byte               // proto encoding of the response without Seq and History
	size int                  // what keeping the event costs in memory, in bytes

	// history marks the copy of a channel message that the channel keeps
	// and replays to those who join it later (see asHistory).
	history bool

	// num is the number of the message it is, for a channel's history
	// (see hub.eventNumber); 0 until known. Written under hub.mu only.
	num uint64
}

// eventOverhead is what an event costs besides its encoding: the struct,
// rounded up to its allocation size class (48 bytes now; 64 leaves room).
const eventOverhead = 64

// asHistory returns a copy of e marked as history: the same message and
// encoding, in a struct of its own. A channel's history keeps this copy,
// not e, so that what the history counts (the copy's own struct and the
// encoding) is what it keeps, and every joiner is shown the same copy.
func (e *event) asHistory() *event {
	return &event{resp: e.resp, wire: e.wire, size: e.size, history: true, num: e.num}
}

// bytes is what keeping e costs, for the replay's and the history's
// budgets; 0 for nil.
func (e *event) bytes() int {
	if e == nil {
		return 0
	}
	return e.size
}

// delivery is an event as one session receives it, with its place in the
// session's numbering.
type delivery struct {
	// Seq is the event's number in the session, or 0 for an answer to a
	// request, which is not numbered.
	Seq uint64
	// event is the event, shared with every other session receiving it.
	event *event
}

// Response returns the delivery as the client receives it, in a new
// message; for tests and logs, not the hot path.
func (d delivery) Response() *chatv1.ChatResponse {
	var resp *chatv1.ChatResponse
	if d.event.resp != nil {
		resp = proto.CloneOf(d.event.resp)
	} else {
		resp = &chatv1.ChatResponse{}
		if err := proto.Unmarshal(d.event.wire, resp); err != nil {
			panic("server: an event's own encoding does not decode: " + err.Error())
		}
	}
	resp.Seq, resp.History = d.Seq, d.event.history
	return resp
}

// privateEvent wraps a response for one session only. It is not encoded
// ahead: its one writer has the codec marshal it, outside the hub's lock.
func privateEvent(resp *chatv1.ChatResponse) *event {
	return &event{resp: resp}
}

// newEvent encodes resp for a broadcast and keeps only the encoding.
func newEvent(resp *chatv1.ChatResponse) *event {
	// Grown, not made, so that the capacity is the allocation's real size
	// class: what the budgets count is what the heap holds.
	b := slices.Grow([]byte(nil), proto.Size(resp))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, resp)
	if err != nil {
		// Cannot happen for what the hub builds (every string was checked
		// as UTF-8 on the way in). If it did, wireCodec marshals resp at
		// send time and the error reaches the streams it is sent to.
		return &event{resp: resp, size: eventOverhead + proto.Size(resp)}
	}
	return &event{wire: b, size: eventOverhead + cap(b)}
}

// wireCodec is the server's gRPC codec: it sends an *outgoing delivery as
// its own seq (and history flag) followed by the bytes of its event encoded
// at publish time, and handles every other message as the standard proto
// codec does. Protobuf parsers accept fields in any order and the seq (field 1)
// and history (field 3) come first, so the result is an ordinary encoding
// of ChatResponse.
type wireCodec struct {
	proto encoding.CodecV2
}

func newWireCodec() wireCodec {
	return wireCodec{proto: encoding.GetCodecV2(protoenc.Name)}
}

// outgoing is a delivery on its way to the network, with room for its own
// part of the message: gRPC keeps the bytes and the two-part slice it is
// handed until the message is written, so they cannot be reused, but a
// writer allocates the outgoing deliveries of a whole batch at once.
type outgoing struct {
	d     delivery
	parts [2]mem.Buffer
	bytes mem.SliceBuffer  // the delivery's own part: buf as filled
	body  mem.SliceBuffer  // the event's part: the bytes encoded at publish time
	buf   [1 + 10 + 2]byte // seq tag and varint, history tag and value
}

// maxBatchBytes bounds the encoding of one batch of events (see
// Join.accept_batches): enough to take the per-message cost off a burst of
// small events, far below the 4 MiB a client takes in one message by
// default. An event bigger than that goes alone.
const maxBatchBytes = 64 << 10

// batchField is ChatResponse.batch's field number, eventsField Batch.events'.
const (
	batchField  = 18
	eventsField = 1
)

// outgoingBatch is several deliveries on their way as one response, a
// ChatResponse whose batch holds each as the response it would be alone.
// sizes are eventSize of each delivery's event, worked out once: sizing a
// welcome (every user online) costs nearly what encoding it does.
type outgoingBatch struct {
	ds    []delivery
	sizes []int
}

// eventSize is the size of an event's encoding without its seq and
// history. A response not yet encoded is sized by proto, which caches the
// sizes of its parts for the marshalling that follows (UseCachedSize).
func eventSize(e *event) int {
	if e.resp != nil {
		return proto.Size(e.resp)
	}
	return len(e.wire)
}

// deliveryHeader appends d's own part, its seq and history, to b.
func deliveryHeader(b []byte, d *delivery) []byte {
	if d.Seq != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, d.Seq)
	}
	if d.event.history {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// marshalBatch encodes a batch in one buffer, copying each event's bytes:
// a copy of a hundred bytes costs far less than a message of its own.
func marshalBatch(h *outgoingBatch) ([]byte, error) {
	var hdr [1 + 10 + 2]byte
	inner := 0
	for i := range h.ds {
		n := len(deliveryHeader(hdr[:0], &h.ds[i])) + h.sizes[i]
		inner += protowire.SizeTag(eventsField) + protowire.SizeBytes(n)
	}
	b := make([]byte, 0, protowire.SizeTag(batchField)+protowire.SizeBytes(inner))
	b = protowire.AppendTag(b, batchField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	for i := range h.ds {
		d := &h.ds[i]
		head := deliveryHeader(hdr[:0], d)
		b = protowire.AppendTag(b, eventsField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(head)+h.sizes[i]))
		b = append(b, head...)
		if d.event.resp != nil {
			var err error
			if b, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(b, d.event.resp); err != nil {
				return nil, err
			}
		} else {
			b = append(b, d.event.wire...)
		}
	}
	if len(b) != cap(b) {
		// The sizes did not add up: a bug, which must not reach the wire.
		return nil, fmt.Errorf("server: a batch of %d events encoded to %d bytes, not the %d sized", len(h.ds), len(b), cap(b))
	}
	return b, nil
}

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if h, ok := v.(*outgoingBatch); ok {
		b, err := marshalBatch(h)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	h, ok := v.(*outgoing)
	if !ok {
		return c.proto.Marshal(v)
	}
	d := &h.d
	h.bytes = deliveryHeader(h.buf[:0], d)
	// A SliceBuffer's Free does nothing, so no stream can recycle the
	// shared bytes while others still send them.
	h.body = d.event.wire
	if h.body == nil {
		// Not from gRPC's buffer pools: a welcome can be large (every
		// user online), and pooled buffers of that size, cached after a
		// join storm, would keep the memory of thousands of them.
		b, err := proto.Marshal(d.event.resp)
		if err != nil {
			return nil, err
		}
		h.body = b
	}
	h.parts = [2]mem.Buffer{&h.bytes, &h.body}
	return mem.BufferSlice(h.parts[:]), nil
}

func (c wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// Name is "proto": on the wire this is the standard protobuf encoding.
func (c wireCodec) Name() string { return protoenc.Name }
