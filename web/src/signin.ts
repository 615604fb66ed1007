// Sign-in for a chatd run with --auth-jwt-key: the page takes its token
// from its URL's fragment (#token=…), as an app that embeds the chat links
// to it. The fragment never reaches a server (browsers do not send it, nor
// put it in a Referer), and the page takes it off the visible URL at once,
// so that it is not shared by copying the address or kept in history. It
// is kept in sessionStorage, per tab, so that a reload still signs in; a
// new link (or a new fragment set by the embedding app, e.g. a renewed
// token) replaces it.
const storeKey = "chatd.signin";

let token = "";

/** readFragment takes a token from location.hash, if it has one, and removes it from the URL. */
export function readFragment(): void {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : location.hash;
  if (hash === "") return;
  const params = new URLSearchParams(hash);
  const t = params.get("token");
  if (t === null) return;
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest === "" ? "" : "#" + rest));
  token = t.trim();
  try {
    if (token === "") sessionStorage.removeItem(storeKey);
    else sessionStorage.setItem(storeKey, token);
  } catch {
    // Storage off: a reload needs the link again.
  }
}

/** signInToken is the token to send with a join, "" for none. */
export function signInToken(): string {
  if (token === "") {
    try {
      token = sessionStorage.getItem(storeKey) ?? "";
    } catch {
      // Storage off.
    }
  }
  return token;
}

/**
 * tokenSubject is the "sub" of the token, the name it signs in, read
 * without checking the signature (the server checks it): "" if there is
 * no token or it cannot be read.
 */
export function tokenSubject(): string {
  const parts = signInToken().split(".");
  if (parts.length !== 3) return "";
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json) as { sub?: unknown };
    return typeof claims.sub === "string" ? claims.sub : "";
  } catch {
    return "";
  }
}
