// The chat page: a login form, then channels, private conversations and
// who is online, all driven by one Chat stream at a time. This file is the
// session: joining (from the form, a reload, a sign-in link or a link for
// another device), resuming after a lost connection (with backoff),
// marking what the person has read, and logging out; the state is in
// model.ts and the DOM in view.ts. It also tells the others when the
// person is typing.
import { fetchHistory, grpc, openChat, type ChatStream } from "./rpc";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ChatRequestSchema } from "./gen/chat/v1/chat_pb";
import { ChatModel, READ_ID, TYPING_ID, channelKey, fold, type Conversation, type Pending } from "./model";
import { View } from "./view";
import { readFragment, signInToken, tokenSubject } from "./signin";
import { deviceLink, readDeviceLink, type DeviceLink } from "./device";

// The tab's session, kept in sessionStorage so that a reload resumes it:
// per tab, and gone when the tab is closed. The device key is as secret as
// the token (whoever has it can join as the user) and kept with it.
const storeKey = "chatd.session";
interface Saved {
  name: string;
  token: string;
  deviceKey: string;
}

let stream: ChatStream | undefined;
let name = ""; // the name the user logged in with; reconnects reuse it
let joined = false; // the current stream got its welcome
let everJoined = false; // some stream of this login got a welcome: reconnect on loss
let loggingOut = false;
let attempt = 0; // reconnects since the last welcome
let reconnectTimer: number | undefined;
let countdownTimer: number | undefined;
let logoutTimer: number | undefined;
let markTimer: number | undefined;
let link: DeviceLink | undefined; // the link for another device this page was opened with
let sentKey = false; // the current stream's join gave a device key
// Typing: the key of the conversation the person is typing in ("" for
// none), and when this stream last said so in each (Date.now()).
let typingIn = "";
const typingSaid = new Map<string, number>();

/** TYPING_EVERY is how often, at most, typing is said again while it goes on, as chatd asks. */
const TYPING_EVERY = 2000;

const model: ChatModel = new ChatModel({
  added: (c, e) => view.added(c, e),
  joinFailed(text, typed) {
    view.showChannelError(text);
    if (typed !== undefined) giveBack(view.channelInput, typed);
  },
  channelList: (channels) => view.channelList(channels),
  listFailed: (text) => view.listFailed(text),
  notDelivered(sends) {
    // Only the text of the conversation shown: the box sends there. The
    // notices quote the others. A reply answers its message again.
    const s = sends.find((u) => u.conv === model.current);
    const c = model.conv();
    if (s && giveBack(view.textInput, s.text) && s.reply && c) model.giveBackReply(c, s.reply);
  },
});

const view: View = new View(model, {
  select(key) {
    model.select(key);
    render();
    markSoon();
  },
  openPrivate(user) {
    model.openPrivate(user);
    render();
    view.textInput.focus();
    markSoon();
  },
  joinChannel,
  leaveChannel(channel) {
    request({ kind: "leaveChannel", channel });
  },
  listChannels() {
    request({ kind: "listChannels" });
  },
  scrollBack() {
    const c = model.conv();
    const req = c && joined ? model.historyRequest(c) : undefined;
    if (!c || !req) return;
    c.scroll = "loading";
    fetchHistory(location.origin, req, signInToken()).then(
      (page) => {
        view.prepended(c, model.prepend(c, page.messages, page.more));
        markSoon();
      },
      (err: Error) => {
        // Tried again on the next scroll, not at once.
        console.warn(`chatd: scroll-back: ${err.message}`);
        window.setTimeout(() => {
          if (c.scroll === "loading") c.scroll = "more";
        }, 2000);
      },
    );
  },
  reply(id) {
    model.replyTo(id);
    render();
  },
  addDevice() {
    if (signInToken() !== "") view.showDevice({ signedIn: true });
    else if (model.deviceKey !== "") view.showDevice({ link: deviceLink(model.me, model.deviceKey) });
    else view.showDevice({});
  },
});

view.loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const n = view.nameInput.value.trim();
  if (n === "") {
    view.showLoginError("Enter a name to join.");
    return;
  }
  login(n);
});

view.sendForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = view.textInput.value;
  const c = model.conv();
  if (text.trim() === "" || !c) return;
  // The text stays with the request until the server confirms it, to be
  // given back if the connection loses it; so does the message answered.
  if (request({ kind: "send", conv: c.key, text, reply: c.reply })) {
    view.textInput.value = "";
    // The message ends the typing, for chatd and those shown it, and the
    // next typing there may be said at once.
    if (typingIn === c.key) typingIn = "";
    typingSaid.delete(c.key);
    model.replyTo(undefined);
    render();
  }
});

view.textInput.addEventListener("input", typed);

view.channelForm.addEventListener("submit", (e) => {
  e.preventDefault();
  joinChannel(view.channelInput.value, true);
});

view.logoutButton.addEventListener("click", () => {
  loggingOut = true;
  clearTimers();
  forget();
  if (!stream) {
    showLogin();
    return;
  }
  // leave ends the session as a logout; the stream ends OK after it.
  stream.send({ action: { case: "leave", value: {} } });
  logoutTimer = window.setTimeout(() => {
    stream?.abort();
    showLogin();
  }, 3000);
});

// The person reads the conversation shown while the page is in front of
// them; what comes meanwhile is marked read as it comes (see markSoon).
model.inView = inView();
for (const [target, type] of [
  [document, "visibilitychange"],
  [window, "focus"],
  [window, "blur"],
] as const) {
  target.addEventListener(type, () => {
    model.inView = inView();
    // Gone to another tab: no longer typing here.
    if (document.visibilityState === "hidden") stopTyping();
    markSoon();
  });
}

// A sign-in token in the URL (#token=…) is taken and removed from it; a
// new one set later (an embedding app renewing it) is taken for the next
// join, a reconnection's included. A link for another device
// (#device=…&name=…) is taken and removed likewise, and joins as its user
// if the page is not in the chat yet.
readFragment();
link = readDeviceLink();
window.addEventListener("hashchange", () => {
  readFragment();
  const l = readDeviceLink();
  if (l && !everJoined && !stream) {
    link = l;
    view.nameInput.value = l.name;
    login(l.name);
  }
});

// A link for another device joins as its user; a reload (or a tab
// restored) takes its session back; a link with a sign-in token joins
// under the token's name.
const saved = load();
const subject = tokenSubject();
if (link && (subject === "" || fold(link.name) === fold(subject))) {
  view.nameInput.value = link.name;
  login(link.name);
} else if (saved && (subject === "" || fold(saved.name) === fold(subject))) {
  view.nameInput.value = saved.name;
  login(saved.name);
} else if (subject !== "") {
  view.nameInput.value = subject;
  login(subject);
}

/** render draws what changed; the person no longer types in a conversation they left for another. */
function render(): void {
  view.render();
  if (typingIn !== "" && typingIn !== model.current) stopTyping();
}

/**
 * typed tells the others in the conversation shown that the person is
 * typing there (again every 2 seconds at most while they go on), or that
 * they stopped: the box was emptied without sending.
 */
function typed(): void {
  const c = model.conv();
  if (!c || !stream || !joined) return;
  if (view.textInput.value.trim() === "") {
    stopTyping();
    return;
  }
  if (typingIn !== c.key) stopTyping();
  typingIn = c.key;
  const now = Date.now();
  const said = typingSaid.get(c.key);
  if (said !== undefined && now - said < TYPING_EVERY) return;
  typingSaid.set(c.key, now);
  sendTyping(c, false);
}

/** stopTyping says that the person stopped typing, if they were. */
function stopTyping(): void {
  const c = model.convs.get(typingIn);
  typingIn = "";
  if (c && stream && joined) sendTyping(c, true);
}

function sendTyping(c: Conversation, stopped: boolean): void {
  const to = c.kind === "private" ? { recipient: c.name } : { channel: c.name };
  stream?.send({ clientId: TYPING_ID, action: { case: "typing", value: { ...to, stopped } } });
}

function login(n: string): void {
  name = n;
  everJoined = false;
  attempt = 0;
  model.reset();
  render();
  view.showJoining();
  connect();
}

/**
 * giveBack puts the text of a request that failed (a message, a channel
 * name) back in the box it was typed in, to be mended or sent again, and
 * reports whether it did. Only into an empty box: anything in it was typed
 * after the request went, and replacing it would lose it, while joining
 * the two would make one text of two. The failure's notice or error quotes
 * what is not given back.
 */
function giveBack(box: HTMLInputElement, text: string): boolean {
  if (box.value !== "") return false;
  box.value = text;
  return true;
}

/** request sends p on the live session, tracked to place its answer, and reports whether it could. */
function request(p: Pending): boolean {
  if (!stream || !joined) return false;
  stream.send({ clientId: model.track(p), action: action(p) });
  return true;
}

/** action is what the server is asked for by p. */
function action(p: Pending): MessageInitShape<typeof ChatRequestSchema>["action"] {
  switch (p.kind) {
    case "send": {
      const c = model.convs.get(p.conv);
      const to = c?.kind === "private" ? { recipient: c.name } : { channel: c?.name ?? p.conv.slice(1) };
      return { case: "send", value: { text: p.text, replyTo: p.reply?.id ?? "", ...to } };
    }
    case "joinChannel":
      return { case: "joinChannel", value: { channel: p.channel } };
    case "leaveChannel":
      return { case: "leaveChannel", value: { channel: p.channel } };
    case "listChannels":
      return { case: "listChannels", value: {} };
  }
}

/** joinChannel joins the channel named by input; typed: input is the channel box's, cleared once sent and given back if refused. */
function joinChannel(input: string, typed = false): void {
  const channel = input.trim().replace(/^#/, "");
  if (channel === "") {
    view.showChannelError("Enter the name of a channel to join or create.");
    return;
  }
  view.showChannelError("");
  const c = model.convs.get(channelKey(channel));
  if (c?.joined) {
    model.select(c.key);
    render();
    view.channelInput.value = "";
    markSoon();
    return;
  }
  model.want(channel);
  if (request({ kind: "joinChannel", channel, typed })) {
    view.channelInput.value = "";
  } else {
    view.showChannelError("Not connected: try again once the page has reconnected.");
  }
}

function connect(): void {
  joined = false;
  // chatd counts typing's 2 seconds per stream, so a new one may say it at
  // once; what the last one said ends by itself within 6 seconds.
  typingIn = "";
  typingSaid.clear();
  const s = openChat(location.origin, {
    onEvent: (ev) => {
      if (s !== stream) return;
      model.inView = inView();
      model.apply(ev);
      if (ev.event.case === "welcome") {
        joined = everJoined = true;
        attempt = 0;
        clearTimers();
        // The link did its work: the key, if it is still the user's, is
        // the welcome's now, and kept with the session.
        link = undefined;
        save({ name, token: model.token, deviceKey: model.deviceKey });
        view.showChat();
        // Answers are not replayed on a resume: ask again what the break
        // left unanswered (nothing, on a new login).
        for (const [id, p] of model.unanswered()) s.send({ clientId: id, action: action(p) });
      }
      render();
      markSoon();
    },
    onEnd: (code, message) => {
      if (s === stream) handleEnd(code, message);
    },
  });
  stream = s;
  // The token asks for the session back: the one this page holds, or, on
  // a fresh page, the one this tab saved before a reload. The device key
  // joins as another device of the user if the session cannot be taken
  // back (or this is a new device): the one this page was given, the
  // link's, or the one saved.
  let token = model.token;
  let deviceKey = model.deviceKey;
  const sv = load();
  const mine = sv && fold(sv.name) === fold(name) ? sv : undefined;
  if (token === "") token = mine?.token ?? "";
  if (deviceKey === "" && link && fold(link.name) === fold(name)) deviceKey = link.key;
  if (deviceKey === "") deviceKey = mine?.deviceKey ?? "";
  sentKey = deviceKey !== "";
  s.send({
    action: {
      case: "join",
      value: { username: name, resumeToken: token, lastSeq: model.lastSeq, authToken: signInToken(), deviceKey },
    },
  });
}

/** inView reports whether the person can be reading the page: it is shown and has the focus. */
function inView(): boolean {
  return document.visibilityState === "visible" && document.hasFocus();
}

/**
 * markSoon sends, shortly, the mark_read the conversation shown needs, if
 * the person is looking at it: one for a burst of messages, not one each.
 * The server tells every device of the user, which clears the count there
 * too.
 */
function markSoon(): void {
  if (markTimer !== undefined) return;
  markTimer = window.setTimeout(() => {
    markTimer = undefined;
    model.inView = inView();
    if (!stream || !joined) return;
    const m = model.markRead();
    if (!m) return;
    stream.send({ clientId: READ_ID, action: { case: "markRead", value: m } });
    render();
  }, 250);
}

function handleEnd(code: grpc.Code, message: string): void {
  stream = undefined;
  const wasJoined = joined;
  joined = false;
  view.setConnected(false);
  if (loggingOut) {
    showLogin();
    return;
  }
  if (code === grpc.Code.Aborted) {
    // Another tab or window took this session over with its token: it is
    // that tab's now, so do not take it back.
    clearTimers();
    forget();
    view.showBanner("This session continued in another tab or window, so this tab is no longer connected.");
    return;
  }
  if (!everJoined) {
    // The first join of this login failed: say why, in the form.
    showLogin();
    view.showLoginError(joinError(code, message));
    return;
  }
  if (wasJoined ? !resumable(code) : !retryable(code)) {
    // The session ended in a way joining again would only meet again, or
    // could not be taken back and the name is now refused or someone
    // else's: retrying will not help.
    forget();
    showLogin();
    if (wasJoined) {
      view.showLoginError(`Your session ended: ${message || "the server ended it"}. Join again to go on.`);
    } else if (code === grpc.Code.AlreadyExists) {
      view.showLoginError(`Your session ended while you were away, and the name "${name}" is now taken. Choose another one.`);
    } else {
      view.showLoginError(joinError(code, message));
    }
    return;
  }
  // Connection lost (or a rejoin failed, e.g. the server is still down):
  // keep the page, say so, and try again.
  scheduleReconnect();
}

/**
 * resumable reports whether a session whose stream ended with code, which
 * the user did not ask for, should be taken back. A broken connection does
 * not always end as UNAVAILABLE: a websocket cut mid-stream ends as
 * UNKNOWN or INTERNAL, a stream reset on the way as CANCELED. So every end
 * is, but an OK one (a logout, which cannot be resumed), ABORTED (dealt
 * with before: another tab took the session over) and the refusals of a
 * join, which joining again would only meet again. chatctl decides alike.
 */
function resumable(code: grpc.Code): boolean {
  switch (code) {
    case grpc.Code.OK:
    case grpc.Code.Aborted:
    case grpc.Code.InvalidArgument:
    case grpc.Code.AlreadyExists:
    case grpc.Code.FailedPrecondition:
    case grpc.Code.DeadlineExceeded:
      return false;
  }
  return true;
}

/** retryable reports whether a join to take the session back that failed with code may succeed if tried again, as chatctl decides. */
function retryable(code: grpc.Code): boolean {
  switch (code) {
    case grpc.Code.AlreadyExists:
    case grpc.Code.InvalidArgument:
    case grpc.Code.FailedPrecondition:
    case grpc.Code.PermissionDenied:
    case grpc.Code.Unauthenticated:
    case grpc.Code.Unimplemented:
    case grpc.Code.Aborted:
      return false;
  }
  return true;
}

function scheduleReconnect(): void {
  // Exponential backoff with jitter, so that a restarted server is not hit
  // by every page at the same instant: 0.5 s, 1 s, 2 s … up to 10 s.
  const base = Math.min(10000, 500 * 2 ** attempt);
  const delay = Math.round(base * (0.75 + Math.random() * 0.5));
  attempt++;
  const at = Date.now() + delay;
  const tick = () => {
    const s = Math.ceil((at - Date.now()) / 1000);
    view.showBanner(s > 0 ? `Connection lost. Reconnecting in ${s} s…` : "Connection lost. Reconnecting…");
  };
  tick();
  window.clearInterval(countdownTimer);
  countdownTimer = window.setInterval(tick, 1000);
  window.clearTimeout(reconnectTimer);
  reconnectTimer = window.setTimeout(() => {
    window.clearInterval(countdownTimer);
    view.showBanner("Connection lost. Reconnecting…");
    connect();
  }, delay);
}

function clearTimers(): void {
  window.clearTimeout(reconnectTimer);
  window.clearInterval(countdownTimer);
  window.clearTimeout(logoutTimer);
}

function showLogin(): void {
  clearTimers();
  stream = undefined;
  joined = everJoined = loggingOut = false;
  view.showLogin();
}

function joinError(code: grpc.Code, message: string): string {
  switch (code) {
    case grpc.Code.AlreadyExists:
      if (sentKey && link && fold(link.name) === fold(name)) {
        return `This link cannot add this device as ${name}: its key is not the one of ${name}'s devices now (mistyped, or from before ${name} last left the chat). On a device where you are in the chat as ${name}, open "Add a device" for a new link.`;
      }
      return `The name "${name}" is taken. Choose another one. If it is you, on another device or tab, open "Add a device" there for a link that brings this one in.`;
    case grpc.Code.InvalidArgument:
      return `"${name}" cannot be used as a name: use 1 to 32 letters, digits or punctuation, without spaces.`;
    case grpc.Code.ResourceExhausted:
      // The chat full, this address's sessions, or the user's devices: the
      // server says which.
      if (!message) return "The chat is full right now. Try again in a little while.";
      return sentKey && link && fold(link.name) === fold(name) ? `This link cannot add this device: ${message}.` : `Could not join: ${message}.`;
    case grpc.Code.Unavailable:
      return "The chat server is not available right now (it may be restarting). Try again in a moment.";
    case grpc.Code.Unauthenticated:
      return signInToken() === ""
        ? "This chat needs you to sign in: open it from the app that signs you in (its link carries your sign-in)."
        : `Your sign-in was refused: ${message || "the token is not valid"}. Open the chat again from the app that signs you in, for a fresh link.`;
    case grpc.Code.PermissionDenied:
      return `${message || "You cannot join under that name"}.`;
    default:
      return `Could not join: ${message || "the chat server could not be reached"}.`;
  }
}

function load(): Saved | undefined {
  try {
    const v = JSON.parse(sessionStorage.getItem(storeKey) ?? "null") as Partial<Saved> | null;
    if (typeof v?.name === "string" && typeof v.token === "string" && v.name !== "") {
      return { name: v.name, token: v.token, deviceKey: typeof v.deviceKey === "string" ? v.deviceKey : "" };
    }
  } catch {
    // Storage off or garbled: start afresh.
  }
  return undefined;
}

function save(s: Saved): void {
  try {
    sessionStorage.setItem(storeKey, JSON.stringify(s));
  } catch {
    // Storage off: a reload starts a new session.
  }
}

function forget(): void {
  try {
    sessionStorage.removeItem(storeKey);
  } catch {
    // Nothing to forget.
  }
}
