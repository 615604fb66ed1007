// The page's DOM: it draws the model and turns clicks into calls to
// ViewActions. Everything a user typed (names, channel names, messages) is
// put on the page as text (textContent, or text nodes), never as markup;
// the http and https addresses in messages become links, made with
// createElement.
import type { Channel, User } from "./gen/chat/v1/chat_pb";
import { channelKey, fold, type ChatModel, type Conversation, type Entry, type Quote } from "./model";

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page lacks #${id}`);
  return e as T;
}

function make<K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text = ""): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className !== "") e.className = className;
  if (text !== "") e.textContent = text;
  return e;
}

/** ViewActions are what the user can ask for from the lists and the dialog. */
export interface ViewActions {
  select(key: string): void;
  openPrivate(user: string): void;
  joinChannel(name: string): void;
  leaveChannel(name: string): void;
  listChannels(): void;
  /** scrollBack asks for the messages of the conversation shown before the oldest it shows. */
  scrollBack(): void;
  /** addDevice asks how to bring another device in as this user (see showDevice). */
  addDevice(): void;
  /** reply makes the message being written answer the message id of the conversation shown; undefined: none. */
  reply(id: string | undefined): void;
}

/**
 * DeviceHelp is how another device joins as this user: with a link
 * carrying the device key, or by signing in there too; neither, if the
 * page has no key (it was never given one).
 */
export interface DeviceHelp {
  link?: string;
  signedIn?: boolean;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** View is the chat page's DOM. */
export class View {
  readonly loginView = el<HTMLElement>("login-view");
  readonly loginForm = el<HTMLFormElement>("login-form");
  readonly nameInput = el<HTMLInputElement>("name");
  readonly joinButton = el<HTMLButtonElement>("join");
  readonly logoutButton = el<HTMLButtonElement>("logout");
  readonly sendForm = el<HTMLFormElement>("send-form");
  readonly textInput = el<HTMLInputElement>("text");
  readonly channelForm = el<HTMLFormElement>("channel-form");
  readonly channelInput = el<HTMLInputElement>("channel-name");
  private readonly loginError = el<HTMLElement>("login-error");
  private readonly chatView = el<HTMLElement>("chat-view");
  private readonly meLabel = el<HTMLElement>("me");
  private readonly banner = el<HTMLElement>("banner");
  private readonly menu = el<HTMLButtonElement>("menu");
  private readonly menuUnread = el<HTMLElement>("menu-unread");
  private readonly channelItems = new KeyedList(el("channels"));
  private readonly channelError = el<HTMLElement>("channel-error");
  private readonly privatesSection = el<HTMLElement>("privates-section");
  private readonly privateItems = new KeyedList(el("privates"));
  private readonly membersSection = el<HTMLElement>("members-section");
  private readonly memberCount = el<HTMLElement>("member-count");
  private readonly memberItems = new KeyedList(el("members"));
  private readonly onlineCount = el<HTMLElement>("online-count");
  private readonly userItems = new KeyedList(el("users"));
  private readonly convTitle = el<HTMLElement>("conv-title");
  private readonly convInfo = el<HTMLElement>("conv-info");
  private readonly convAction = el<HTMLButtonElement>("conv-action");
  private readonly empty = el<HTMLElement>("empty");
  private readonly messageList = el<HTMLOListElement>("messages");
  private readonly dialog = el<HTMLDialogElement>("channel-dialog");
  private readonly dialogStatus = el<HTMLElement>("channel-status");
  private readonly dialogList = el<HTMLUListElement>("channel-list");
  private readonly deviceDialog = el<HTMLDialogElement>("device-dialog");
  private readonly deviceHelp = el<HTMLElement>("device-help");
  private readonly deviceRow = el<HTMLElement>("device-row");
  private readonly deviceLink = el<HTMLInputElement>("device-link");
  private readonly deviceStatus = el<HTMLElement>("device-status");
  private readonly typingLine = el<HTMLElement>("typing");
  private readonly replyBar = el<HTMLElement>("reply-bar");
  private readonly replyQuote = el<HTMLElement>("reply-quote");

  /** connected: the session is live, so the page may send. */
  private connected = false;
  /** shown is the key of the conversation drawn last. */
  private shown = "";

  constructor(
    private readonly m: ChatModel,
    private readonly act: ViewActions,
  ) {
    this.menu.addEventListener("click", () => this.toggleMenu());
    el("browse").addEventListener("click", () => this.openChannels());
    el("channel-refresh").addEventListener("click", () => this.openChannels());
    el("channel-close").addEventListener("click", () => this.dialog.close());
    el("add-device").addEventListener("click", () => {
      this.closeMenu();
      this.act.addDevice();
    });
    el("device-close").addEventListener("click", () => this.deviceDialog.close());
    el("device-copy").addEventListener("click", () => void this.copyDeviceLink());
    // Closed, the dialog forgets the link: it is a secret, not to be left in the page.
    this.deviceDialog.addEventListener("close", () => {
      this.deviceLink.value = "";
    });
    // Scrolled to the top: older messages, if there are any (see prepended).
    this.messageList.addEventListener("scroll", () => {
      if (this.messageList.scrollTop < 40) this.act.scrollBack();
    });
    // A message's Reply, and the quote of the message it answers.
    this.messageList.addEventListener("click", (ev) => {
      const target = ev.target as Element;
      const reply = target.closest<HTMLElement>("li.message .reply-action");
      if (reply) {
        this.act.reply(reply.closest<HTMLElement>("li.message")?.dataset.id);
        this.textInput.focus();
        return;
      }
      const quote = target.closest<HTMLElement>("li.message .quote");
      if (quote?.dataset.id) this.showMessage(quote.dataset.id);
    });
    el("reply-cancel").addEventListener("click", () => {
      this.act.reply(undefined);
      this.textInput.focus();
    });
    this.textInput.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && this.m.conv()?.reply) this.act.reply(undefined);
    });
    this.convAction.addEventListener("click", () => {
      const c = this.m.conv();
      if (c?.kind !== "channel") return;
      if (c.joined) this.act.leaveChannel(c.name);
      else this.act.joinChannel(c.name);
    });
  }

  // --- login and connection state ---

  showLogin(): void {
    this.chatView.hidden = true;
    this.loginView.hidden = false;
    if (this.dialog.open) this.dialog.close();
    if (this.deviceDialog.open) this.deviceDialog.close();
    this.joinButton.disabled = false;
    this.joinButton.textContent = "Join";
    this.hideBanner();
    this.nameInput.focus();
  }

  showJoining(): void {
    this.hideLoginError();
    this.joinButton.disabled = true;
    this.joinButton.textContent = "Joining…";
  }

  showChat(): void {
    this.loginView.hidden = true;
    this.chatView.hidden = false;
    this.hideBanner();
    this.meLabel.textContent = this.m.me;
    this.setConnected(true);
    this.textInput.focus();
  }

  showLoginError(text: string): void {
    this.loginError.textContent = text;
    this.loginError.hidden = false;
    this.nameInput.setAttribute("aria-invalid", "true");
    this.nameInput.focus();
  }

  hideLoginError(): void {
    this.loginError.hidden = true;
    this.loginError.textContent = "";
    this.nameInput.removeAttribute("aria-invalid");
  }

  showBanner(text: string): void {
    this.banner.textContent = text;
    this.banner.hidden = false;
  }

  hideBanner(): void {
    this.banner.hidden = true;
    this.banner.textContent = "";
  }

  setConnected(on: boolean): void {
    this.connected = on;
    this.drawComposer();
  }

  showChannelError(text: string): void {
    this.channelError.textContent = text;
    this.channelError.hidden = text === "";
  }

  // --- drawing the model ---

  /** render draws what the model marked as changed. */
  render(): void {
    const d = this.m.dirty;
    if (d.lists) this.drawLists();
    if (d.people) this.drawPeople();
    if (d.current) this.drawCurrent();
    if (d.composer) this.drawBelow();
    d.lists = d.people = d.current = d.composer = false;
  }

  /** added shows a new entry if its conversation is the one shown. */
  added(c: Conversation, e: Entry): void {
    if (c.key !== this.m.current || this.m.dirty.current) return; // drawn whole by render
    // Follow new lines only if the reader is at the bottom already.
    const l = this.messageList;
    const atBottom = l.scrollHeight - l.scrollTop - l.clientHeight < 40;
    l.append(entryItem(e));
    if (atBottom) l.scrollTop = l.scrollHeight;
  }

  private drawLists(): void {
    const channels: [string, Conversation][] = [];
    const privates: [string, Conversation][] = [];
    let unread = 0;
    for (const c of this.m.convs.values()) {
      unread += c.unread;
      (c.kind === "channel" ? channels : privates).push([c.key, c]);
    }
    this.channelItems.draw(channels, (key) => this.convItem(key), (li, c) => this.updateConv(li, c));
    this.privateItems.draw(privates, (key) => this.convItem(key), (li, c) => this.updateConv(li, c));
    this.privatesSection.hidden = privates.length === 0;
    this.menuUnread.textContent = unread > 0 ? String(unread) : "";
    this.menuUnread.hidden = unread === 0;
    // Seen from another tab, or the taskbar.
    document.title = unread > 0 ? `(${unread}) chatd` : "chatd";
  }

  private convItem(key: string): HTMLLIElement {
    const b = make("button", "conv");
    b.type = "button";
    b.dataset.conv = key;
    b.append(make("span", "conv-name"));
    b.addEventListener("click", () => {
      this.act.select(key);
      this.closeMenu();
    });
    const li = make("li");
    li.append(b);
    return li;
  }

  private updateConv(li: HTMLLIElement, c: Conversation): void {
    const b = li.firstElementChild as HTMLButtonElement;
    const name = b.firstElementChild as HTMLElement;
    if (c.key === this.m.current) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
    if (c.kind === "channel") {
      name.textContent = "#" + c.name;
      b.classList.toggle("gone", !c.joined);
    } else {
      name.textContent = c.name;
      name.className = this.m.online.has(fold(c.name)) ? "conv-name dot on" : "conv-name dot";
    }
    // Mentions first: "@1 3" is one message naming you among three unread.
    setBadge(b, "mention-badge", c.mentions, `@${c.mentions}`, plural(c.mentions, "mention") + " of you", b.querySelector(".badge"));
    setBadge(b, "badge", c.unread, String(c.unread), `${c.unread} unread`);
  }

  private drawPeople(): void {
    this.onlineCount.textContent = `Online (${this.m.online.size})`;
    this.userItems.draw(this.people(this.m.online.values()), (_, u) => this.personItem(u), () => {});
    const c = this.m.conv();
    if (c?.kind === "channel" && c.joined) {
      this.membersSection.hidden = false;
      this.memberCount.textContent = `In #${c.name} (${c.members.size})`;
      this.memberItems.draw(this.people(c.members.values()), (_, u) => this.personItem(u), () => {});
    } else {
      this.membersSection.hidden = true;
      this.memberItems.draw([], (_, u: User) => this.personItem(u), () => {});
    }
    this.drawHead(); // member count, online state
  }

  /** people keys users for a KeyedList; you are drawn apart from the others. */
  private *people(users: Iterable<User>): Iterable<[string, User]> {
    for (const u of users) yield [(this.m.isMe(u.username) ? "you:" : "user:") + fold(u.username), u];
  }

  private personItem(u: User): HTMLLIElement {
    const li = make("li");
    if (this.m.isMe(u.username)) {
      li.className = "you";
      li.append(u.username, " ", make("span", "tag", "you"));
      return li;
    }
    const b = make("button", "person", u.username);
    b.type = "button";
    b.title = `Talk privately with ${u.username}`;
    b.addEventListener("click", () => {
      this.act.openPrivate(u.username);
      this.closeMenu();
    });
    li.append(b);
    return li;
  }

  private drawCurrent(): void {
    const c = this.m.conv();
    // On a phone, a conversation picked or joined from the lists is shown.
    if (this.m.current !== this.shown) this.closeMenu();
    this.shown = this.m.current;
    this.empty.hidden = c !== undefined;
    this.messageList.replaceChildren(...(c ? c.entries.map(entryItem) : []));
    this.messageList.scrollTop = this.messageList.scrollHeight;
    this.drawHead();
    this.fillUp();
  }

  /**
   * prepended redraws the conversation shown after older messages were put
   * before what it showed, keeping in view what the reader was looking at.
   */
  prepended(c: Conversation, where: { at: number; count: number }): void {
    if (c.key !== this.m.current) return;
    const l = this.messageList;
    // The first line in view stays where it is on screen.
    // The first line in view stays where it is on screen: the first one
    // from where the page went in, if a line above that (the separator)
    // is in view.
    const top = l.getBoundingClientRect().top;
    const before = Array.from(l.children);
    const i = Math.max(
      before.findIndex((li) => li.getBoundingClientRect().bottom > top),
      Math.min(where.at, before.length - 1),
    );
    const offset = i >= 0 ? before[i].getBoundingClientRect().top - top : 0;
    l.replaceChildren(...c.entries.map(entryItem));
    if (i >= 0) {
      const anchor = l.children[i + where.count];
      if (anchor) l.scrollTop += anchor.getBoundingClientRect().top - top - offset;
    }
    this.m.dirty.current = false;
    this.fillUp();
  }

  /** fillUp asks for older messages while the list is too short to scroll, so that scrolling can reach them. */
  private fillUp(): void {
    const l = this.messageList;
    if (!l.hidden && l.scrollHeight <= l.clientHeight) this.act.scrollBack();
  }

  private drawHead(): void {
    const c = this.m.conv();
    if (!c) {
      this.convTitle.textContent = "";
      this.convInfo.textContent = "";
      this.convAction.hidden = true;
    } else if (c.kind === "channel") {
      this.convTitle.textContent = "#" + c.name;
      this.convInfo.textContent = c.joined ? plural(c.members.size, "member") : "you are not in this channel";
      this.convAction.hidden = false;
      this.convAction.textContent = c.joined ? "Leave" : "Join again";
    } else {
      this.convTitle.textContent = c.name;
      this.convInfo.textContent = this.m.online.has(fold(c.name)) ? "private, online" : "private, offline";
      this.convAction.hidden = true;
    }
    this.drawComposer();
  }

  private drawComposer(): void {
    const c = this.m.conv();
    let ready = false;
    let hint = "Write a message, Enter to send";
    if (!this.connected) {
      hint = "Not connected";
    } else if (!c) {
      hint = "Pick a conversation first";
    } else if (c.kind === "channel" && !c.joined) {
      hint = `Join #${c.name} again to write here`;
    } else if (c.kind === "private" && !this.m.online.has(fold(c.name))) {
      hint = `${c.name} is offline`;
    } else {
      ready = true;
      hint = c.kind === "channel" ? `Message #${c.name}, Enter to send` : `Message ${c.name} privately, Enter to send`;
    }
    this.textInput.disabled = !ready;
    this.textInput.placeholder = hint;
  }

  /** drawBelow shows who is typing under the conversation, and the message being answered above the message box. */
  private drawBelow(): void {
    const c = this.m.conv();
    this.typingLine.textContent = c ? typingText(c.typing.filter((u) => !this.m.isMe(u)), c.severalTyping) : "";
    const r = c?.reply;
    this.replyBar.hidden = r === undefined;
    this.replyQuote.replaceChildren(...(r ? quoteParts(r) : []));
  }

  /** showMessage scrolls to the message id, if it is shown, and marks it a moment. */
  private showMessage(id: string): void {
    const li = this.messageList.querySelector<HTMLElement>(`li.message[data-id="${CSS.escape(id)}"]`);
    if (!li) return; // not loaded: the quote says what it was
    li.scrollIntoView({ block: "center" });
    li.classList.remove("flash");
    void li.offsetWidth; // starts the animation again
    li.classList.add("flash");
  }

  // --- the channel list dialog ---

  private openChannels(): void {
    this.dialogStatus.textContent = this.connected ? "Loading…" : "Not connected.";
    if (!this.dialog.open) this.dialog.showModal();
    if (this.connected) this.act.listChannels();
  }

  /** channelList shows a list_channels answer in the dialog, if it is open. */
  channelList(channels: readonly Channel[]): void {
    if (!this.dialog.open) return;
    this.dialogStatus.textContent =
      channels.length === 0 ? "There are no channels yet: create one by joining it." : plural(channels.length, "channel");
    const sorted = [...channels].sort((a, b) => (fold(a.name) < fold(b.name) ? -1 : fold(a.name) > fold(b.name) ? 1 : 0));
    this.dialogList.replaceChildren(
      ...sorted.map((ch) => {
        const li = make("li");
        const joined = this.m.convs.get(channelKey(ch.name))?.joined === true;
        const b = make("button", joined ? "secondary small" : "small", joined ? "Open" : "Join");
        b.type = "button";
        b.addEventListener("click", () => {
          this.dialog.close();
          this.closeMenu();
          if (joined) this.act.select(channelKey(ch.name));
          else this.act.joinChannel(ch.name);
        });
        li.dataset.channel = fold(ch.name);
        li.append(make("span", "channel-name", "#" + ch.name), make("span", "count", plural(ch.memberCount, "member")), b);
        return li;
      }),
    );
  }

  listFailed(text: string): void {
    if (this.dialog.open) this.dialogStatus.textContent = text;
  }

  // --- adding a device ---

  /** showDevice opens the dialog that says how to be in the chat as this user on another device too. */
  showDevice(h: DeviceHelp): void {
    const me = this.m.me;
    this.deviceStatus.textContent = "";
    this.deviceRow.hidden = h.link === undefined;
    this.deviceLink.value = h.link ?? "";
    if (h.link !== undefined) {
      this.deviceHelp.textContent =
        `Open this link on your phone or another computer to be in the chat there as ${me} too: ` +
        "the same channels, and your messages on both. Whoever has the link can join as you: keep it to yourself.";
    } else if (h.signedIn) {
      this.deviceHelp.textContent = `Open the chat on the other device from the app that signs you in, as you did here: you will be ${me} there too. No link is needed.`;
    } else {
      this.deviceHelp.textContent = `This page has no link for another device. Log out and join again as ${me} to get one.`;
    }
    if (!this.deviceDialog.open) this.deviceDialog.showModal();
    if (h.link !== undefined) this.deviceLink.select();
  }

  private async copyDeviceLink(): Promise<void> {
    const text = this.deviceLink.value;
    if (text === "") return;
    try {
      await navigator.clipboard.writeText(text);
      this.deviceStatus.textContent = "Copied. Open it on the other device.";
    } catch {
      // No clipboard for the page (not a secure origin, or refused): the
      // link is selected, to copy by hand.
      this.deviceLink.select();
      this.deviceStatus.textContent = "Copy the selected link (Ctrl+C, or ⌘C), then open it on the other device.";
    }
  }

  // --- the sidebar on a phone ---

  private toggleMenu(): void {
    const open = !this.chatView.classList.contains("menu-open");
    this.chatView.classList.toggle("menu-open", open);
    this.menu.setAttribute("aria-expanded", String(open));
  }

  private closeMenu(): void {
    this.chatView.classList.remove("menu-open");
    this.menu.setAttribute("aria-expanded", "false");
  }
}

/**
 * KeyedList keeps a list's items in step with keyed data, making each
 * key's element once: a redraw (someone joined, a message came) does not
 * replace the element under the pointer, which would lose a click that is
 * under way.
 */
class KeyedList {
  private readonly items = new Map<string, HTMLLIElement>();

  constructor(private readonly ul: HTMLElement) {}

  /** draw makes the list entries' items, in order: make makes a key's item, update brings it up to date. */
  draw<T>(entries: Iterable<[string, T]>, make: (key: string, v: T) => HTMLLIElement, update: (li: HTMLLIElement, v: T) => void): void {
    const want: HTMLLIElement[] = [];
    const keys = new Set<string>();
    for (const [k, v] of entries) {
      let li = this.items.get(k);
      if (!li) {
        li = make(k, v);
        this.items.set(k, li);
      }
      update(li, v);
      want.push(li);
      keys.add(k);
    }
    for (const k of this.items.keys()) if (!keys.has(k)) this.items.delete(k);
    const now = this.ul.children;
    if (now.length !== want.length || want.some((li, i) => now[i] !== li)) this.ul.replaceChildren(...want);
  }
}

/**
 * setBadge shows n in the conversation button b's badge of class cls, as
 * text (read out as label), made before the element before if not null;
 * none for 0.
 */
function setBadge(b: HTMLButtonElement, cls: string, n: number, text: string, label: string, before: Element | null = null): void {
  let badge = b.querySelector<HTMLElement>("." + cls);
  if (n === 0) {
    badge?.remove();
    return;
  }
  if (!badge) {
    badge = make("span", cls);
    b.insertBefore(badge, before);
  }
  badge.textContent = text;
  badge.setAttribute("aria-label", label);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function entryItem(e: Entry): HTMLLIElement {
  if (e.kind === "separator") {
    const li = make("li", "separator");
    li.append(make("span", "", e.text));
    return li;
  }
  const li = make("li", e.kind === "message" ? "message" : "notice");
  const t = make("time", "", timeFormat.format(e.time));
  t.dateTime = e.time.toISOString();
  li.append(t);
  if (e.kind === "message") {
    li.dataset.id = e.id;
    if (e.replyTo) {
      // Above the line; a click shows the message answered.
      const q = make("button", "quote");
      q.type = "button";
      q.dataset.id = e.replyTo.id;
      q.title = "Show the message this answers";
      q.append(...quoteParts(e.replyTo));
      li.prepend(q);
    }
    if (e.mine) li.classList.add("mine");
    if (e.history) li.classList.add("history");
    if (e.mentionsMe) li.classList.add("mention");
    const text = make("span", "text");
    text.append(...withLinks(e.text));
    const reply = make("button", "reply-action", "Reply");
    reply.type = "button";
    reply.title = `Reply to ${e.sender}`;
    li.append(make("span", "sender", e.sender), text, reply);
  } else {
    if (e.tone !== "plain") li.classList.add(e.tone);
    li.append(make("span", "text", e.text));
  }
  return li;
}

/** typingText says who is typing: the others, or several people (names unsaid). */
function typingText(others: string[], several: boolean): string {
  if (several) return "several people are typing…";
  switch (others.length) {
    case 0:
      return "";
    case 1:
      return `${others[0]} is typing…`;
    default:
      return `${others.slice(0, -1).join(", ")} and ${others[others.length - 1]} are typing…`;
  }
}

/** quoteParts are the sender and excerpt of a quoted message. */
function quoteParts(q: Quote): HTMLElement[] {
  return [make("span", "quote-sender", q.sender), make("span", "quote-text", q.excerpt)];
}

/** urlPattern finds the http and https addresses in a message's text. */
const urlPattern = /\bhttps?:\/\/[^\s<>"]+/gi;

/**
 * withLinks returns a message's text as what to append to its element:
 * its http and https addresses as links, which open in a new tab and tell
 * the site nothing of the page (nor vouch for it, for search engines),
 * the rest as strings, which append puts in as text. Nothing of the text
 * is ever parsed as markup, and no other scheme (javascript:, data:)
 * becomes a link.
 */
function withLinks(text: string): (string | HTMLAnchorElement)[] {
  const out: (string | HTMLAnchorElement)[] = [];
  let at = 0;
  for (const m of text.matchAll(urlPattern)) {
    const url = trimURL(m[0]);
    const href = httpHref(url);
    if (href === undefined) continue;
    if (m.index > at) out.push(text.slice(at, m.index));
    const a = make("a", "", url);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    out.push(a);
    at = m.index + url.length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

/**
 * trimURL takes off an address the punctuation that ends the sentence
 * around it ("see https://example.com."), and a closing bracket it does
 * not open ("(at https://example.com)"), keeping those of
 * "https://en.wikipedia.org/wiki/Go_(game)".
 */
function trimURL(url: string): string {
  for (;;) {
    const last = url[url.length - 1];
    if (".,;:!?'\"*…’”»".includes(last)) {
      url = url.slice(0, -1);
      continue;
    }
    const open = last === ")" ? "(" : last === "]" ? "[" : "";
    if (open !== "" && url.split(open).length < url.split(last).length) {
      url = url.slice(0, -1);
      continue;
    }
    return url;
  }
}

/** httpHref returns url as a link's address if it is a valid http or https one, else undefined. */
function httpHref(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : undefined;
  } catch {
    return undefined;
  }
}
