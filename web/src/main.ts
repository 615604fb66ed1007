// The chat page: a login form, then the online list, the messages and a
// text box, all driven by one Chat stream. Everything a user typed is put
// on the page with textContent, never as markup.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { LeaveReason, type ChatResponse, type User } from "./gen/chat/v1/chat_pb";
import { grpc, openChat, type ChatStream } from "./rpc";

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page lacks #${id}`);
  return e as T;
}

const loginView = el<HTMLElement>("login-view");
const loginForm = el<HTMLFormElement>("login-form");
const nameInput = el<HTMLInputElement>("name");
const joinButton = el<HTMLButtonElement>("join");
const loginError = el<HTMLElement>("login-error");
const chatView = el<HTMLElement>("chat-view");
const meLabel = el<HTMLElement>("me");
const logoutButton = el<HTMLButtonElement>("logout");
const banner = el<HTMLElement>("banner");
const onlineCount = el<HTMLElement>("online-count");
const userList = el<HTMLUListElement>("users");
const messageList = el<HTMLOListElement>("messages");
const sendForm = el<HTMLFormElement>("send-form");
const textInput = el<HTMLInputElement>("text");

// The session. Only one stream is open at a time.
let stream: ChatStream | undefined;
let name = ""; // the name the user logged in with; reconnects reuse it
let me = ""; // the name as the server recorded it
let joined = false; // the current stream got its welcome
let everJoined = false; // some stream of this login got a welcome: reconnect on loss
let loggingOut = false;
let attempt = 0; // reconnects since the last welcome
let reconnectTimer: number | undefined;
let countdownTimer: number | undefined;
let logoutTimer: number | undefined;
let nextClientID = 0;
// Who is online, by case-folded name (the server's uniqueness), in join order.
const online = new Map<string, User>();

const fold = (s: string) => s.toLowerCase();

loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const n = nameInput.value.trim();
  if (n === "") {
    showLoginError("Enter a name to join.");
    return;
  }
  name = n;
  everJoined = false;
  attempt = 0;
  messageList.replaceChildren();
  hideLoginError();
  joinButton.disabled = true;
  joinButton.textContent = "Joining…";
  connect();
});

sendForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = textInput.value;
  if (text.trim() === "" || !stream || !joined) return;
  nextClientID++;
  stream.send({ clientId: `c${nextClientID}`, action: { case: "send", value: { text } } });
  textInput.value = "";
});

logoutButton.addEventListener("click", () => {
  loggingOut = true;
  clearTimers();
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

function connect(): void {
  joined = false;
  const s = openChat(location.origin, {
    onEvent: (ev) => {
      if (s === stream) handleEvent(ev);
    },
    onEnd: (code, message) => {
      if (s === stream) handleEnd(code, message);
    },
  });
  stream = s;
  s.send({ action: { case: "join", value: { username: name } } });
}

function handleEvent(ev: ChatResponse): void {
  const when = ev.time ? timestampDate(ev.time) : new Date();
  switch (ev.event.case) {
    case "welcome": {
      const w = ev.event.value;
      me = w.you?.username ?? name;
      const rejoin = everJoined;
      joined = everJoined = true;
      attempt = 0;
      online.clear();
      for (const u of w.onlineUsers) online.set(fold(u.username), u);
      showChat();
      renderUsers();
      notice(when, rejoin ? `Reconnected as ${me}` : `You joined as ${me}`);
      break;
    }
    case "userJoined": {
      const u = ev.event.value.user;
      if (!u) break;
      online.set(fold(u.username), u);
      renderUsers();
      notice(when, `${u.username} joined`);
      break;
    }
    case "userLeft": {
      const u = ev.event.value.user;
      if (!u) break;
      online.delete(fold(u.username));
      renderUsers();
      const who = fold(u.username) === fold(me) ? "You" : u.username;
      notice(when, `${who} left (${reasonText(ev.event.value.reason)})`);
      break;
    }
    case "message": {
      const m = ev.event.value;
      addMessage(when, m.sender, m.text, fold(m.sender) === fold(me));
      break;
    }
    case "rejected":
      notice(when, `Not sent: ${ev.event.value.reason}`, "error");
      break;
  }
}

function handleEnd(code: grpc.Code, message: string): void {
  stream = undefined;
  const wasJoined = joined;
  joined = false;
  if (loggingOut) {
    showLogin();
    return;
  }
  if (!everJoined) {
    // The first join of this login failed: say why, in the form.
    showLogin();
    showLoginError(joinError(code, message));
    return;
  }
  if (!wasJoined && code === grpc.Code.InvalidArgument) {
    // A rejoin with a name the server now refuses: nothing to retry.
    showLogin();
    showLoginError(joinError(code, message));
    return;
  }
  // Connection lost (or a rejoin failed, e.g. the old session is not gone
  // yet): keep the page, say so, and try again.
  scheduleReconnect();
}

function scheduleReconnect(): void {
  // Exponential backoff with jitter, so that a restarted server is not hit
  // by every page at the same instant: 0.5 s, 1 s, 2 s … up to 10 s.
  const base = Math.min(10000, 500 * 2 ** attempt);
  const delay = Math.round(base * (0.75 + Math.random() * 0.5));
  attempt++;
  const at = Date.now() + delay;
  textInput.disabled = true;
  const tick = () => {
    const s = Math.ceil((at - Date.now()) / 1000);
    showBanner(s > 0 ? `Connection lost. Reconnecting in ${s} s…` : "Connection lost. Reconnecting…");
  };
  tick();
  window.clearInterval(countdownTimer);
  countdownTimer = window.setInterval(tick, 1000);
  window.clearTimeout(reconnectTimer);
  reconnectTimer = window.setTimeout(() => {
    window.clearInterval(countdownTimer);
    showBanner("Connection lost. Reconnecting…");
    connect();
  }, delay);
}

function clearTimers(): void {
  window.clearTimeout(reconnectTimer);
  window.clearInterval(countdownTimer);
  window.clearTimeout(logoutTimer);
}

function joinError(code: grpc.Code, message: string): string {
  switch (code) {
    case grpc.Code.AlreadyExists:
      return `The name "${name}" is taken. Choose another one.`;
    case grpc.Code.InvalidArgument:
      return `"${name}" cannot be used as a name: use 1 to 32 letters, digits or punctuation, without spaces.`;
    case grpc.Code.ResourceExhausted:
      return "The chat is full right now. Try again in a little while.";
    case grpc.Code.Unavailable:
      return "The chat server is not available right now (it may be restarting). Try again in a moment.";
    default:
      return `Could not join: ${message || "the chat server could not be reached"}.`;
  }
}

function reasonText(r: LeaveReason): string {
  switch (r) {
    case LeaveReason.LOGOUT:
      return "logged out";
    case LeaveReason.DISCONNECTED:
      return "disconnected";
    case LeaveReason.TOO_SLOW:
      return "connection too slow";
    case LeaveReason.SERVER_SHUTDOWN:
      return "server shut down";
    default:
      return "left";
  }
}

function showLogin(): void {
  clearTimers();
  stream = undefined;
  joined = everJoined = loggingOut = false;
  online.clear();
  chatView.hidden = true;
  loginView.hidden = false;
  joinButton.disabled = false;
  joinButton.textContent = "Join";
  hideBanner();
  nameInput.focus();
}

function showChat(): void {
  loginView.hidden = true;
  chatView.hidden = false;
  hideBanner();
  meLabel.textContent = me;
  textInput.disabled = false;
  textInput.focus();
}

function showLoginError(text: string): void {
  loginError.textContent = text;
  loginError.hidden = false;
  nameInput.setAttribute("aria-invalid", "true");
  nameInput.focus();
}

function hideLoginError(): void {
  loginError.hidden = true;
  loginError.textContent = "";
  nameInput.removeAttribute("aria-invalid");
}

function showBanner(text: string): void {
  banner.textContent = text;
  banner.hidden = false;
}

function hideBanner(): void {
  window.clearInterval(countdownTimer);
  banner.hidden = true;
  banner.textContent = "";
}

function renderUsers(): void {
  onlineCount.textContent = `Online (${online.size})`;
  const items: HTMLLIElement[] = [];
  for (const u of online.values()) {
    const li = document.createElement("li");
    li.textContent = u.username;
    if (fold(u.username) === fold(me)) {
      li.classList.add("you");
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "you";
      li.append(" ", tag);
    }
    items.push(li);
  }
  userList.replaceChildren(...items);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function row(when: Date, cls: string): HTMLLIElement {
  const li = document.createElement("li");
  li.className = cls;
  const t = document.createElement("time");
  t.dateTime = when.toISOString();
  t.textContent = timeFormat.format(when);
  li.append(t);
  return li;
}

function append(li: HTMLLIElement): void {
  // Follow new messages only if the reader is at the bottom already.
  const atBottom = messageList.scrollHeight - messageList.scrollTop - messageList.clientHeight < 40;
  messageList.append(li);
  if (atBottom) messageList.scrollTop = messageList.scrollHeight;
}

function addMessage(when: Date, sender: string, text: string, mine: boolean): void {
  const li = row(when, mine ? "message mine" : "message");
  const who = document.createElement("span");
  who.className = "sender";
  who.textContent = sender;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(who, body);
  append(li);
}

function notice(when: Date, text: string, kind = "notice"): void {
  const li = row(when, kind === "error" ? "notice error" : "notice");
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(body);
  append(li);
}
