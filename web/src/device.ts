// Another device of the same user: a link to the page that carries the
// user's name and device key (see chat.v1's Join.device_key) in its
// fragment, #device=…&name=…. The fragment never reaches a server (browsers
// do not send it, nor put it in a Referer), so the key is not in any
// server's log; the page that opens the link takes it off the visible URL
// at once, so that it is not shared again by copying the address or kept
// in history. Whoever has the link can join as the user: it is for the
// user's own devices.

/** DeviceLink is what a link for another device carries. */
export interface DeviceLink {
  name: string;
  key: string;
}

/** deviceLink is the link that brings another device into the chat as name, with the device key key. */
export function deviceLink(name: string, key: string): string {
  return location.origin + location.pathname + "#" + new URLSearchParams({ device: key, name }).toString();
}

/**
 * readDeviceLink takes a device link's name and key from location.hash, if
 * it has them, and removes them from the URL, leaving anything else the
 * fragment holds. A fragment with a key and no name (or the reverse) is
 * removed and not taken.
 */
export function readDeviceLink(): DeviceLink | undefined {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : location.hash;
  if (hash === "") return undefined;
  const params = new URLSearchParams(hash);
  const key = params.get("device");
  if (key === null) return undefined;
  const name = params.get("name") ?? "";
  params.delete("device");
  params.delete("name");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest === "" ? "" : "#" + rest));
  if (key.trim() === "" || name.trim() === "") return undefined;
  return { name: name.trim(), key: key.trim() };
}
