// A small typed adapter between protobuf-es messages (generated from
// proto/ into gen/) and improbable-eng's grpc-web client, which expects
// google-protobuf's message interface (serializeBinary/deserializeBinary).
// The Chat stream goes over improbable's websocket transport, the only way
// a browser can run a bidirectional stream; History, a unary call, over
// plain HTTP.
import { grpc } from "@improbable-eng/grpc-web";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ChatRequestSchema,
  ChatResponseSchema,
  ChatService,
  HistoryRequestSchema,
  HistoryResponseSchema,
  type ChatRequest,
  type ChatResponse,
  type HistoryRequest,
  type HistoryResponse,
} from "./gen/chat/v1/chat_pb";

// Request wraps a ChatRequest for improbable's client.
class Request implements grpc.ProtobufMessage {
  constructor(readonly msg: ChatRequest = create(ChatRequestSchema)) {}
  static deserializeBinary(bytes: Uint8Array): Request {
    return new Request(fromBinary(ChatRequestSchema, bytes));
  }
  serializeBinary(): Uint8Array {
    return toBinary(ChatRequestSchema, this.msg);
  }
  toObject(): object {
    return this.msg;
  }
}

// Response wraps a ChatResponse for improbable's client.
class Response implements grpc.ProtobufMessage {
  constructor(readonly msg: ChatResponse = create(ChatResponseSchema)) {}
  static deserializeBinary(bytes: Uint8Array): Response {
    return new Response(fromBinary(ChatResponseSchema, bytes));
  }
  serializeBinary(): Uint8Array {
    return toBinary(ChatResponseSchema, this.msg);
  }
  toObject(): object {
    return this.msg;
  }
}

// The names come from the generated descriptor, so a renamed rpc fails to
// type-check instead of failing at run time.
const chatMethod: grpc.MethodDefinition<Request, Response> = {
  methodName: ChatService.method.chat.name,
  service: { serviceName: ChatService.typeName },
  requestStream: true,
  responseStream: true,
  requestType: Request,
  responseType: Response,
};

/** ChatHandlers receive what happens on a Chat stream. */
export interface ChatHandlers {
  /** onEvent is called for every event, in order. */
  onEvent(ev: ChatResponse): void;
  /** onEnd is called once, when the stream is over for any reason. */
  onEnd(code: grpc.Code, message: string): void;
}

/** ChatStream is one open Chat session. */
export interface ChatStream {
  /** send queues a request; it goes out once the websocket is open. */
  send(req: MessageInitShape<typeof ChatRequestSchema>): void;
  /** abort closes the websocket: the server sees a disconnect. */
  abort(): void;
}

/** openChat starts a Chat stream to host (e.g. location.origin). */
export function openChat(host: string, h: ChatHandlers): ChatStream {
  const client = grpc.client<Request, Response, typeof chatMethod>(chatMethod, { host, transport: grpc.WebsocketTransport() });
  let ended = false;
  client.onMessage((r) => {
    // A batch is several events in one response (the join asks for them):
    // each is handled as if it had come alone.
    const evs = r.msg.event.case === "batch" ? r.msg.event.value.events : [r.msg];
    for (const ev of evs) {
      if (ended) return;
      h.onEvent(ev);
    }
  });
  client.onEnd((code, message) => {
    if (ended) return;
    ended = true;
    h.onEnd(code, message);
  });
  client.start();
  return {
    send(req) {
      const msg = create(ChatRequestSchema, req);
      if (msg.action.case === "join") msg.action.value.acceptBatches = true;
      client.send(new Request(msg));
    },
    abort() {
      if (ended) return;
      ended = true;
      client.close();
    },
  };
}

// HistoryReq and HistoryResp wrap History's messages for improbable's client.
class HistoryReq implements grpc.ProtobufMessage {
  constructor(readonly msg: HistoryRequest = create(HistoryRequestSchema)) {}
  static deserializeBinary(bytes: Uint8Array): HistoryReq {
    return new HistoryReq(fromBinary(HistoryRequestSchema, bytes));
  }
  serializeBinary(): Uint8Array {
    return toBinary(HistoryRequestSchema, this.msg);
  }
  toObject(): object {
    return this.msg;
  }
}

class HistoryResp implements grpc.ProtobufMessage {
  constructor(readonly msg: HistoryResponse = create(HistoryResponseSchema)) {}
  static deserializeBinary(bytes: Uint8Array): HistoryResp {
    return new HistoryResp(fromBinary(HistoryResponseSchema, bytes));
  }
  serializeBinary(): Uint8Array {
    return toBinary(HistoryResponseSchema, this.msg);
  }
  toObject(): object {
    return this.msg;
  }
}

const historyMethod: grpc.UnaryMethodDefinition<HistoryReq, HistoryResp> = {
  methodName: ChatService.method.history.name,
  service: { serviceName: ChatService.typeName },
  requestStream: false,
  responseStream: false,
  requestType: HistoryReq,
  responseType: HistoryResp,
};

/**
 * fetchHistory asks host for a page of a conversation's past messages
 * (see chat.v1's History); signIn, if not empty, is the sign-in token.
 */
export function fetchHistory(host: string, req: MessageInitShape<typeof HistoryRequestSchema>, signIn: string): Promise<HistoryResponse> {
  return new Promise((resolve, reject) => {
    const metadata = signIn === "" ? undefined : new grpc.Metadata({ authorization: `Bearer ${signIn}` });
    grpc.unary(historyMethod, {
      host,
      request: new HistoryReq(create(HistoryRequestSchema, req)),
      metadata,
      onEnd: (res) => {
        if (res.status === grpc.Code.OK && res.message) resolve((res.message as HistoryResp).msg);
        else reject(new Error(res.statusMessage || `history: ${grpc.Code[res.status]}`));
      },
    });
  });
}

export { grpc };
