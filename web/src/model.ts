// The page's state, driven by the Chat stream's events and nothing else:
// who is online, the conversations (channels the session is in, and
// private conversations with one user each) with their entries, unread
// and mention counts (the server's, which every device of the user shares)
// and who is typing there, and what the resume and other devices need
// (token, last seq, device key). No DOM here: the view draws from this
// state, told what changed through ModelEvents and the dirty flags.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  LeaveReason,
  Recovery,
  type Channel,
  type ChannelJoined,
  type ChatResponse,
  type Message,
  type ReadState,
  type Rejected,
  type TypingState,
  type User,
  type Welcome,
} from "./gen/chat/v1/chat_pb";

/** GENERAL is the channel every new session is put in. */
export const GENERAL = "general";

/** fold gives the form under which names are unique (the server's case mapping, near enough). */
export const fold = (s: string): string => s.toLowerCase();

/** channelKey and privateKey name conversations: "#general", "@bob". */
export const channelKey = (name: string): string => "#" + fold(name);
export const privateKey = (user: string): string => "@" + fold(user);

/** Tone is how a notice is shown. */
export type Tone = "plain" | "warn" | "error";

/** Quote is the message a message answers: its id, sender and the start of its text. */
export interface Quote {
  id: string;
  sender: string;
  excerpt: string;
}

/** MessageEntry is a message in a conversation. */
export interface MessageEntry {
  kind: "message";
  time: Date;
  id: string;
  sender: string;
  text: string;
  mine: boolean;
  history: boolean;
  /** mentionsMe: the message names the user with @name (see Message.mentions). */
  mentionsMe: boolean;
  /** replyTo is the message this one answers, if it answers one. */
  replyTo?: Quote;
}

/** Entry is one line of a conversation. */
export type Entry =
  | MessageEntry
  | { kind: "notice"; time: Date; text: string; tone: Tone }
  | { kind: "separator"; time: Date; text: string };

/** Conversation is a channel or a private conversation with one user. */
export interface Conversation {
  readonly key: string;
  readonly kind: "channel" | "private";
  /** name is the channel's name as the server spells it, or the other user's name. */
  name: string;
  /** joined: for a channel, the session is in it (false after an incomplete recovery until the server puts it back). */
  joined: boolean;
  /** members of a channel, by folded name, in the order they entered. */
  readonly members: Map<string, User>;
  readonly entries: Entry[];
  /** ids of the messages shown, so that history already on screen is not shown twice. */
  readonly ids: Set<string>;
  /**
   * unread is how many messages of others came after the user's read mark,
   * as the server counts them for every device of the user: set from the
   * server (a channel's channel_joined, the welcome, a channel list, a read
   * event), and counted on from there by the live messages that follow.
   */
  unread: number;
  /** mentions is how many of the unread messages name the user, counted as unread is. */
  mentions: number;
  /** lastRead is the id of the last message read, as the server last said; "" if none. */
  lastRead: string;
  /** markSent is the id of the last message this stream marked read, not yet confirmed by a read event; "" if none. */
  markSent: string;
  /** historyLeft is how many history messages announced by channel_joined are still to come. */
  historyLeft: number;
  /** separated: the "earlier messages" separator of the current history is in. */
  separated: boolean;
  /** afterHistory is the join notice, added once the history is in. */
  afterHistory?: { time: Date; text: string };
  /** scroll is where scrolling back stands: older messages may be asked for, are being, or there are none. */
  scroll: "more" | "loading" | "done";
  /** reply is the message the person is answering in the message box, if any (see replyTo). */
  reply?: Quote;
  /**
   * typing is who is typing there now, as the server last said (the user
   * included, if so), less those whose message came since; empty if
   * nobody is, or if severalTyping.
   */
  typing: string[];
  /** severalTyping: more are typing than the server names. */
  severalTyping: boolean;
}

/** A request the page sent, remembered by client_id to place its answer. */
export type Pending =
  /** reply is the message answered, if any. */
  | { kind: "send"; conv: string; text: string; reply?: Quote }
  /** typed: the name was typed in the channel box, which is given it back if the join is refused. */
  | { kind: "joinChannel"; channel: string; typed?: boolean }
  | { kind: "leaveChannel"; channel: string }
  | { kind: "listChannels" };

/** Tracked is a request sent and not answered yet, with the session's stream it went on (see ChatModel.epoch). */
type Tracked = Pending & { epoch: number };

/** Unsent is a message the connection lost, or may have lost, or that the server refused. */
export interface Unsent {
  /** conv is the key of the conversation it was written in. */
  conv: string;
  text: string;
  /** reply is the message it answered, if any. */
  reply?: Quote;
}

/** FAILED_PRECONDITION is the gRPC code of "you are already in" that answers a join of a channel one is in. */
const FAILED_PRECONDITION = 9;

/**
 * READ_ID is the client_id of every mark_read. A mark is answered by a
 * read event, which names the conversation and carries no client_id, so
 * marks are not tracked; a refused one (the channel was left meanwhile) is
 * only logged.
 */
export const READ_ID = "read";

/** TYPING_ID is the client_id of every typing request: like a mark, it is not tracked, and a refusal is only logged. */
export const TYPING_ID = "typing";

/** MarkRead is what a mark_read asks: a channel's conversation, or the private one with a user, read up to a message. */
export interface MarkRead {
  channel?: string;
  with?: string;
  messageId: string;
}

/** ModelEvents is how the model tells the view about what is not a redraw. */
export interface ModelEvents {
  /** added is called for every entry added to a conversation. */
  added(c: Conversation, e: Entry): void;
  /**
   * joinFailed says a join_channel the user asked for was refused, in
   * words; typed is the channel's name if it was typed in the channel box
   * (to be given back), else undefined.
   */
  joinFailed(text: string, typed: string | undefined): void;
  /** channelList delivers a list_channels answer. */
  channelList(channels: readonly Channel[]): void;
  /** listFailed says a list_channels was refused. */
  listFailed(text: string): void;
  /**
   * notDelivered says which messages did not reach the server, or may not
   * have: lost, or perhaps lost, by a broken connection, or refused by the
   * server. Oldest first; each has a notice in its conversation already.
   */
  notDelivered(sends: readonly Unsent[]): void;
}

/** Dirty says which parts of the page need drawing again. */
export interface Dirty {
  /** lists: the channel and private conversation lists (names, unread and mention counts, which is current). */
  lists: boolean;
  /** people: who is online and the current channel's members. */
  people: boolean;
  /** current: another conversation is shown, or the shown one was redrawn. */
  current: boolean;
  /** composer: what goes with the message box changed: the message being answered, who is typing. */
  composer: boolean;
}

/**
 * ChatModel is the state of one login: it lives across reconnects of the
 * same session and is reset by a new login. Not safe for concurrent use
 * (there is none in a page).
 */
export class ChatModel {
  /** me is the name as the server recorded it; empty until the first welcome. */
  me = "";
  /** token is the session's resume token; empty until the first welcome. */
  token = "";
  /**
   * deviceKey lets another device join as the same user (see Join.device_key);
   * empty until a welcome carries it (a device signed in is not given one).
   */
  deviceKey = "";
  /**
   * inView says the person is looking at the page (the tab is visible and
   * focused): live messages in the conversation shown are then read as they
   * come, not counted as unread. The page keeps it up to date.
   */
  inView = false;
  /** lastSeq is the seq of the last event received (0 before any). */
  lastSeq = 0n;
  /** epoch counts the welcomes of this login: each is a stream, and requests go on the last one. */
  epoch = 0;
  /** online is who is online, by folded name, in join order. */
  readonly online = new Map<string, User>();
  /** convs are the conversations, in the order they were opened. */
  readonly convs = new Map<string, Conversation>();
  /** current is the key of the conversation shown, or "" for none. */
  current = "";
  readonly dirty: Dirty = { lists: true, people: true, current: true, composer: true };

  private nextID = 0;
  /**
   * idPrefix makes this page's client_ids its own: a message sent from
   * another device of the user comes back with that device's client_id,
   * which must not be taken for the answer to a request of this one.
   */
  private readonly idPrefix = randomID();
  /** pending are the requests sent and not answered yet, by client_id, in the order they were sent. */
  private readonly pending = new Map<string, Tracked>();
  /** resent are the client_ids of the joins sent again after the last recovery (see unanswered). */
  private readonly resent = new Set<string>();
  /** wanted is the channel the user asked to join, shown once joined. */
  private wanted = "";
  /** welcomeNote is the new session's greeting, put in general after its history. */
  private welcomeNote = "";

  constructor(private readonly events: ModelEvents) {}

  /** reset forgets everything, for a new login. */
  reset(): void {
    this.me = this.token = this.deviceKey = this.wanted = this.welcomeNote = this.current = "";
    this.lastSeq = 0n;
    this.epoch = 0;
    this.online.clear();
    this.convs.clear();
    this.pending.clear();
    this.resent.clear();
    this.markAll();
  }

  /** isMe reports whether name is this session's user. */
  isMe(name: string): boolean {
    return this.me !== "" && fold(name) === fold(this.me);
  }

  /** conv returns the conversation shown, if any. */
  conv(): Conversation | undefined {
    return this.convs.get(this.current);
  }

  /** track remembers a request sent on the current stream and returns the client_id to send it with. */
  track(p: Pending): string {
    const id = `c${this.idPrefix}.${++this.nextID}`;
    this.pending.set(id, { ...p, epoch: this.epoch });
    // Every request is answered (a join or leave by its channel_joined or
    // channel_left), or found lost after a recovery; this bound is for a
    // server that does not answer.
    if (this.pending.size > 500) this.pending.delete(this.pending.keys().next().value!);
    return id;
  }

  /**
   * unanswered returns the joins and channel lists sent on an earlier
   * stream and not answered yet, in the order they were sent, to be sent
   * again with the same client_id on the stream just welcomed: a
   * rejection or a channel_list is not replayed on a resume, so the answer
   * may have been lost with the connection, or the request itself. A join
   * that got in the first time is then answered "already in", which is
   * taken for its success.
   */
  unanswered(): [string, Pending][] {
    const out: [string, Pending][] = [];
    for (const [id, t] of this.pending) {
      if (t.epoch === this.epoch || (t.kind !== "joinChannel" && t.kind !== "listChannels")) continue;
      t.epoch = this.epoch;
      if (t.kind === "joinChannel") this.resent.add(id);
      out.push([id, t]);
    }
    return out;
  }

  /** want makes the channel the conversation shown as soon as the session is in it. */
  want(channel: string): void {
    this.wanted = channelKey(channel);
  }

  /** select shows the conversation key. It is read once the person sees it (see markRead). */
  select(key: string): void {
    const c = this.convs.get(key);
    if (!c) return;
    this.current = key;
    this.dirty.current = this.dirty.lists = this.dirty.people = this.dirty.composer = true;
  }

  /**
   * markRead returns the mark_read to send for the conversation shown, if
   * the person is looking at it and it shows a message after its read mark
   * (the last one shown is marked, so a burst of messages makes one mark);
   * undefined if there is none to send. The count is taken as cleared until
   * the server's read event says otherwise.
   */
  markRead(): MarkRead | undefined {
    const c = this.conv();
    if (!this.inView || !c?.joined) return undefined;
    const last = lastMessageID(c);
    if (last === "" || last === c.lastRead || last === c.markSent) return undefined;
    c.markSent = last;
    if (c.unread !== 0 || c.mentions !== 0) {
      c.unread = c.mentions = 0;
      this.dirty.lists = true;
    }
    return c.kind === "channel" ? { channel: c.name, messageId: last } : { with: c.name, messageId: last };
  }

  /**
   * replyTo makes the message being written in the conversation shown
   * answer its message id, or none if id is undefined or not shown there.
   */
  replyTo(id: string | undefined): void {
    const c = this.conv();
    if (!c) return;
    const e = id === undefined ? undefined : c.entries.find((e) => e.kind === "message" && e.id === id);
    c.reply = e?.kind === "message" ? { id: e.id, sender: e.sender, excerpt: excerpt(e.text) } : undefined;
    this.dirty.composer = true;
  }

  /** giveBackReply makes the message being written in c answer reply again, unless it answers another. */
  giveBackReply(c: Conversation, reply: Quote): void {
    if (c.reply) return;
    c.reply = reply;
    if (c.key === this.current) this.dirty.composer = true;
  }

  /** openPrivate opens (creating it if need be) the private conversation with user, and shows it. */
  openPrivate(user: string): void {
    if (this.isMe(user)) return;
    this.privateConv(this.online.get(fold(user))?.username ?? user);
    this.select(privateKey(user));
  }

  /** apply applies one event of the stream. */
  apply(ev: ChatResponse): void {
    if (ev.seq !== 0n) {
      if (ev.event.case !== "welcome" && this.lastSeq !== 0n && ev.seq !== this.lastSeq + 1n) {
        console.warn(`chatd: event seq ${ev.seq} after ${this.lastSeq}`);
      }
      this.lastSeq = ev.seq;
    }
    const when = ev.time ? timestampDate(ev.time) : new Date();
    const e = ev.event;
    switch (e.case) {
      case "welcome":
        this.welcome(e.value, when);
        break;
      case "userJoined":
        if (e.value.user) this.userJoined(e.value.user, e.value.resumed, when);
        break;
      case "userLeft":
        if (e.value.user) this.userLeft(e.value.user, e.value.reason, when);
        break;
      case "message":
        this.message(e.value, ev.history, when);
        break;
      case "channelJoined":
        this.channelJoined(e.value, when);
        break;
      case "channelLeft":
        if (e.value.user) this.channelLeft(e.value.channel, e.value.user, when);
        break;
      case "channelList":
        this.pending.delete(e.value.clientId);
        this.channelList(e.value.channels);
        break;
      case "rejected":
        this.rejected(e.value, when);
        break;
      case "read":
        this.read(e.value);
        break;
      case "typing":
        this.typing(e.value);
        break;
    }
  }

  private welcome(w: Welcome, when: Date): void {
    const hadState = this.me !== "";
    this.me = w.you?.username ?? this.me;
    this.token = w.resumeToken;
    // Only the welcome of the user's first device, or of a join that gave
    // the key, carries it: a resume without it keeps the one known.
    if (w.deviceKey !== "") this.deviceKey = w.deviceKey;
    this.epoch++;
    this.resent.clear();
    this.markAll();
    for (const c of this.convs.values()) {
      // A mark sent on the stream that broke may have been lost with it.
      c.markSent = "";
      // Typing is not replayed: who is typing now is told after the welcome.
      this.setTyping(c, [], false);
    }
    if (hadState && w.recovery === Recovery.COMPLETE) {
      // Everything missed follows: the state stays. A message sent before
      // the break is confirmed by its echo in what follows, or found lost
      // once a later one is (see message).
      this.note(this.conv(), when, `Reconnected as ${this.me}.`);
      return;
    }
    this.online.clear();
    for (const u of w.onlineUsers) this.online.set(fold(u.username), u);
    // The private conversations with unread messages, as the server counts
    // them: listed, so that a new device or a reload shows them (their
    // messages come from History when opened); the others have none.
    for (const c of this.convs.values()) if (c.kind === "private") c.unread = c.mentions = 0;
    for (const r of w.unreadPrivate) this.setRead(this.privateConv(r.with), r);
    if (!hadState) {
      // A new session: general and its history follow.
      this.welcomeNote = `You joined as ${this.me}`;
      return;
    }
    // The server could not send everything missed: its snapshot replaces
    // ours, and a channel_joined follows for each channel the session is
    // in. What is on screen stays (history already shown is not repeated);
    // channels the session is no longer in stay listed, marked, until it
    // joins them again.
    for (const c of this.convs.values()) {
      if (c.kind !== "channel") continue;
      c.joined = false;
      c.members.clear();
      c.unread = c.mentions = 0; // the server's counts come with its channel_joined
      c.historyLeft = 0;
      c.afterHistory = undefined;
    }
    this.note(
      this.conv(),
      when,
      `Reconnected as ${this.me}, but some of what happened while you were away could not be recovered: messages may be missing.`,
      "warn",
    );
    // Nothing tells whether the messages sent before the break and not
    // confirmed reached the server.
    this.unsent(
      (t) => t.epoch < this.epoch,
      (text) => `Perhaps not delivered (the connection broke before the server confirmed it): ${quote(text)}`,
      "warn",
      when,
    );
  }

  private userJoined(u: User, resumed: boolean, when: Date): void {
    this.online.set(fold(u.username), u);
    this.dirty.people = this.dirty.lists = true;
    if (this.isMe(u.username)) return;
    if (!resumed) {
      // A new session is in general from its join; a resumed one gets a
      // channel_joined for each of its channels instead.
      const g = this.convs.get(channelKey(GENERAL));
      if (g?.joined) {
        g.members.set(fold(u.username), u);
        this.note(g, when, `${u.username} joined`);
      }
    }
    const p = this.convs.get(privateKey(u.username));
    if (p) this.note(p, when, resumed ? `${u.username} is back online` : `${u.username} is online`);
  }

  private userLeft(u: User, reason: LeaveReason, when: Date): void {
    const f = fold(u.username);
    this.online.delete(f);
    this.dirty.people = this.dirty.lists = true;
    const why = reasonText(reason);
    if (this.isMe(u.username)) {
      this.note(this.conv(), when, `You left (${why})`);
      return;
    }
    for (const c of this.convs.values()) {
      if (c.kind === "channel" && c.members.delete(f)) this.note(c, when, `${u.username} left (${why})`);
    }
    const p = this.convs.get(privateKey(u.username));
    if (p) this.note(p, when, `${u.username} left (${why})`);
  }

  private message(m: Message, history: boolean, when: Date): void {
    let c: Conversation;
    if (m.recipient !== "") {
      c = this.privateConv(this.isMe(m.sender) ? m.recipient : m.sender);
    } else {
      const name = m.channel || GENERAL;
      c = this.convs.get(channelKey(name)) ?? this.channelConv(name);
    }
    const mine = this.isMe(m.sender);
    const sent = mine && m.clientId !== "" ? this.pending.get(m.clientId) : undefined;
    if (sent) this.pending.delete(m.clientId);
    if (sent?.kind === "send" && !history) {
      // The server handles a session's requests in order, and a complete
      // recovery replays every event since the break before new ones: a
      // message sent on an earlier stream still unconfirmed when one sent
      // after it is confirmed never reached the server.
      this.unsent(
        (t) => t.epoch < sent.epoch,
        (text) => `Not delivered (the connection broke before it reached the server): ${quote(text)}`,
        "error",
        when,
      );
    }
    if (history) {
      if (!c.ids.has(m.id)) {
        if (!c.separated) {
          c.separated = true;
          this.add(c, { kind: "separator", time: when, text: "Earlier messages" });
        }
        c.ids.add(m.id);
        this.add(c, this.entry(m, when, true));
      }
      if (c.historyLeft > 0 && --c.historyLeft === 0) this.endHistory(c);
      return;
    }
    if (c.historyLeft > 0) {
      // Fewer history messages came than announced: carry on.
      c.historyLeft = 0;
      this.endHistory(c);
    }
    c.ids.add(m.id);
    const e = this.entry(m, when, false);
    this.add(c, e);
    // A message ends its sender's typing, which the server does not say.
    const typers = c.typing.filter((u) => fold(u) !== fold(m.sender));
    if (typers.length !== c.typing.length) this.setTyping(c, typers, c.severalTyping);
    if (mine) {
      // The server takes the user's own message, from any device, as
      // having read the conversation up to it.
      c.lastRead = m.id;
      c.markSent = "";
      if (c.unread !== 0 || c.mentions !== 0) this.dirty.lists = true;
      c.unread = c.mentions = 0;
    } else if (!(c.key === this.current && this.inView)) {
      // As the server counts them, until it says more; a message the
      // person sees as it comes is marked read instead (see markRead).
      c.unread++;
      if (e.mentionsMe) c.mentions++;
      this.dirty.lists = true;
    }
  }

  /** read applies a read event: the user's read mark of a conversation moved, on this device or another. */
  private read(r: ReadState): void {
    let c: Conversation | undefined;
    if (r.channel !== "") {
      c = this.convs.get(channelKey(r.channel));
    } else if (r.with !== "") {
      c = this.convs.get(privateKey(r.with)) ?? (r.unread > 0 ? this.privateConv(r.with) : undefined);
    }
    if (!c) return;
    if (c.markSent === r.lastReadId) c.markSent = "";
    this.setRead(c, r);
  }

  /**
   * typing takes who is typing in a conversation now: a channel's, or the
   * private one with the user typing (with, also once that user stopped).
   * A chatd of before that fix sent the state saying that nobody types in
   * a private conversation any more with no name: it is taken for every
   * private conversation's.
   */
  private typing(ts: TypingState): void {
    if (ts.channel === "" && ts.with === "") {
      for (const c of this.convs.values()) if (c.kind === "private") this.setTyping(c, [], false);
      return;
    }
    const c = ts.channel !== "" ? this.convs.get(channelKey(ts.channel)) : this.convs.get(privateKey(ts.with));
    if (c) this.setTyping(c, ts.users, ts.several);
  }

  private setTyping(c: Conversation, users: string[], several: boolean): void {
    if (c.typing.length === 0 && users.length === 0 && c.severalTyping === several) return;
    c.typing = users;
    c.severalTyping = several;
    if (c.key === this.current) this.dirty.composer = true;
  }

  /** setRead takes the server's read state of c. */
  private setRead(c: Conversation, r: ReadState): void {
    c.lastRead = r.lastReadId;
    c.unread = r.unread;
    c.mentions = r.mentions;
    this.dirty.lists = true;
  }

  /**
   * channelList takes the unread counts of a list_channels answer, and
   * passes it on. It has no mention counts: those stay, but for a channel
   * now read, or with fewer unread messages than it counted mentions.
   */
  private channelList(channels: readonly Channel[]): void {
    for (const ch of channels) {
      const c = this.convs.get(channelKey(ch.name));
      if (c?.joined && c.unread !== ch.unread) {
        c.unread = ch.unread;
        c.mentions = Math.min(c.mentions, c.unread);
        this.dirty.lists = true;
      }
    }
    this.events.channelList(channels);
  }

  private channelJoined(j: ChannelJoined, when: Date): void {
    const u = j.user;
    if (!u) return;
    const key = channelKey(j.channel);
    if (!this.isMe(u.username)) {
      const c = this.convs.get(key);
      if (!c?.joined) return;
      c.members.set(fold(u.username), u);
      this.note(c, when, `${u.username} joined #${c.name}`);
      this.dirty.people = true;
      return;
    }
    const known = this.convs.get(key);
    const c = known ?? this.channelConv(j.channel);
    c.name = j.channel;
    // Back in a channel still on screen after an incomplete recovery.
    let text = known && !known.joined && known.entries.length > 0 ? `You are back in #${c.name}` : `You joined #${c.name}`;
    c.joined = true;
    c.members.clear();
    for (const m of j.members) c.members.set(fold(m.username), m);
    if (this.welcomeNote !== "" && key === channelKey(GENERAL)) {
      text = this.welcomeNote;
      this.welcomeNote = "";
    }
    c.historyLeft = j.historyCount;
    c.separated = false;
    c.markSent = "";
    if (j.read) this.setRead(c, j.read);
    else c.unread = c.mentions = 0; // entering a channel reads what came before
    c.afterHistory = { time: when, text };
    this.answered("joinChannel", key);
    if (c.historyLeft === 0) this.endHistory(c);
    if (this.current === "" || !this.convs.has(this.current) || this.wanted === key) {
      this.wanted = "";
      this.select(key);
    }
    this.dirty.lists = this.dirty.people = true;
  }

  private channelLeft(channel: string, u: User, when: Date): void {
    const key = channelKey(channel);
    const c = this.convs.get(key);
    if (!c) return;
    if (!this.isMe(u.username)) {
      if (c.members.delete(fold(u.username))) this.note(c, when, `${u.username} left #${c.name}`);
      this.dirty.people = true;
      return;
    }
    this.convs.delete(key);
    this.answered("leaveChannel", key);
    this.markAll();
    if (this.current === key) {
      this.current = "";
      const next = this.convs.get(channelKey(GENERAL)) ?? this.convs.values().next().value;
      if (next) this.select(next.key);
    }
    this.note(this.conv(), when, `You left #${c.name}`);
  }

  private rejected(r: Rejected, when: Date): void {
    if (r.clientId === READ_ID || r.clientId === TYPING_ID) {
      // Nothing the person asked for: the conversation was left meanwhile.
      console.warn(`chatd: ${r.clientId === READ_ID ? "mark_read" : "typing"} refused: ${r.reason}`);
      return;
    }
    const p = this.pending.get(r.clientId);
    const reason = r.reason || "the server refused it";
    if (p?.kind === "send") {
      // Given up on like a message the connection lost: said in its
      // conversation, and its text given back to be mended.
      this.unsent((_, id) => id === r.clientId, (text) => `Not sent (${reason}): ${quote(text)}`, "error", when);
      return;
    }
    this.pending.delete(r.clientId);
    if (this.resent.delete(r.clientId) && r.code === FAILED_PRECONDITION) {
      // "Already in": a join sent again after a recovery had got in the
      // first time, as the events replayed showed. Its success.
      return;
    }
    switch (p?.kind) {
      case "joinChannel":
        if (this.wanted === channelKey(p.channel)) this.wanted = "";
        this.events.joinFailed(`Could not join #${p.channel}: ${reason}`, p.typed ? p.channel : undefined);
        break;
      case "leaveChannel":
        this.note(this.convs.get(channelKey(p.channel)) ?? this.conv(), when, `Could not leave #${p.channel}: ${reason}`, "error");
        break;
      case "listChannels":
        this.events.listFailed(`Could not list the channels: ${reason}`);
        break;
      default:
        this.note(this.conv(), when, `Refused: ${reason}`, "error");
    }
  }

  /** answered forgets the joins (or leaves) of the channel key: the server did it. */
  private answered(kind: "joinChannel" | "leaveChannel", key: string): void {
    for (const [id, t] of this.pending) {
      if (t.kind === kind && channelKey(t.channel) === key) this.pending.delete(id);
    }
  }

  /**
   * unsent gives up on the messages sent and not confirmed that lost
   * selects (by what was sent and its client_id): it says so in their
   * conversations, in words from say, and tells the page.
   */
  private unsent(lost: (t: Tracked, id: string) => boolean, say: (text: string) => string, tone: Tone, when: Date): void {
    const out: Unsent[] = [];
    for (const [id, t] of this.pending) {
      if (t.kind !== "send" || !lost(t, id)) continue;
      this.pending.delete(id);
      this.note(this.convs.get(t.conv) ?? this.conv(), when, say(t.text), tone);
      out.push({ conv: t.conv, text: t.text, reply: t.reply });
    }
    if (out.length > 0) this.events.notDelivered(out);
  }

  private endHistory(c: Conversation): void {
    c.historyLeft = 0;
    c.separated = false;
    const a = c.afterHistory;
    c.afterHistory = undefined;
    if (a) this.note(c, a.time, a.text);
  }

  private channelConv(name: string): Conversation {
    return this.newConv(channelKey(name), "channel", name);
  }

  private privateConv(user: string): Conversation {
    return this.convs.get(privateKey(user)) ?? this.newConv(privateKey(user), "private", user);
  }

  private newConv(key: string, kind: Conversation["kind"], name: string): Conversation {
    const c: Conversation = {
      key,
      kind,
      name,
      joined: kind === "private",
      members: new Map(),
      entries: [],
      ids: new Set(),
      unread: 0,
      mentions: 0,
      lastRead: "",
      markSent: "",
      historyLeft: 0,
      separated: false,
      scroll: "more",
      typing: [],
      severalTyping: false,
    };
    this.convs.set(key, c);
    this.dirty.lists = true;
    return c;
  }

  private note(c: Conversation | undefined, time: Date, text: string, tone: Tone = "plain"): void {
    if (c) this.add(c, { kind: "notice", time, text, tone });
  }

  /**
   * historyRequest returns what to ask History for the messages of c before
   * the oldest one shown, or undefined if there is nothing to ask (none
   * left, or a page on its way).
   */
  historyRequest(c: Conversation): { channel?: string; with?: string; beforeId: string; resumeToken: string } | undefined {
    if (c.scroll !== "more") return undefined;
    const oldest = c.entries.find((e) => e.kind === "message");
    const beforeId = oldest?.kind === "message" ? oldest.id : "";
    const who = c.kind === "channel" ? { channel: c.name } : { with: c.name };
    return { ...who, beforeId, resumeToken: this.token };
  }

  /**
   * prepend puts a page of older messages (oldest first) before what c
   * shows (after its "Earlier messages" separator, if it begins with one);
   * more says whether older ones remain. It returns where the messages went
   * in c.entries and how many there are.
   */
  prepend(c: Conversation, page: readonly ChatResponse[], more: boolean): { at: number; count: number } {
    const items: Entry[] = [];
    for (const ev of page) {
      if (ev.event.case !== "message") continue;
      const m = ev.event.value;
      if (c.ids.has(m.id)) continue;
      c.ids.add(m.id);
      items.push(this.entry(m, ev.time ? timestampDate(ev.time) : new Date(), true));
    }
    const at = c.entries[0]?.kind === "separator" ? 1 : 0;
    if (at === 0 && items.length > 0) {
      items.unshift({ kind: "separator", time: items[0].time, text: "Earlier messages" });
      c.separated = true;
    }
    c.entries.splice(at, 0, ...items);
    c.scroll = more ? "more" : "done";
    if (c.key === this.current) this.dirty.current = true;
    return { at, count: items.length };
  }

  /** entry is the entry that shows m. */
  private entry(m: Message, time: Date, history: boolean): MessageEntry {
    return {
      kind: "message",
      time,
      id: m.id,
      sender: m.sender,
      text: m.text,
      mine: this.isMe(m.sender),
      history,
      mentionsMe: m.mentions.some((u) => this.isMe(u)),
      replyTo: m.replyTo ? { id: m.replyTo.id, sender: m.replyTo.sender, excerpt: m.replyTo.excerpt } : undefined,
    };
  }

  private add(c: Conversation, e: Entry): void {
    c.entries.push(e);
    this.events.added(c, e);
  }

  private markAll(): void {
    this.dirty.lists = this.dirty.people = this.dirty.current = this.dirty.composer = true;
  }
}

/** lastMessageID is the id of the last message c shows, "" if it shows none. */
function lastMessageID(c: Conversation): string {
  for (let i = c.entries.length - 1; i >= 0; i--) {
    const e = c.entries[i];
    if (e.kind === "message") return e.id;
  }
  return "";
}

/** randomID is a short random string, to tell this page's client_ids from another device's. */
function randomID(): string {
  const b = new Uint8Array(4);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** excerpt is the start of a message's text, as the server quotes it in a reply: 100 characters at most, "…" if cut. */
function excerpt(text: string): string {
  const t = Array.from(text); // by code point, not to split a pair
  return t.length > 100 ? t.slice(0, 99).join("") + "…" : text;
}

/** quote shows a message's text in a notice, shortened if long. */
function quote(text: string): string {
  const t = Array.from(text.trim()); // by code point, not to split a pair
  return `“${t.length > 80 ? t.slice(0, 79).join("") + "…" : t.join("")}”`;
}

/** reasonText says why a user left, in words. */
export function reasonText(r: LeaveReason): string {
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
