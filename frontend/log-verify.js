// The public ballot log, checked on this device (docs/ballot-log.md). Loaded only after a vote
// is Confirmed, and by /verify: never on the page's critical path.
//
// It fetches the poll's signed checkpoint and the C2SP tlog-tiles it needs, checks the
// checkpoint's signature with the log keys of GET /api/v1/keys, finds the ballot at its entry,
// rebuilds the tree's root around it (its inclusion), and rebuilds the root of the last
// checkpoint this device saw from the same tiles (the log only grew).

import { b64urlEncode } from "./b64.js";
import { _, formatNumber } from "./i18n.js";

const utf8 = new TextEncoder();
const TILE_WIDTH = 256;
const HASH_BYTES = 32;
const SEEN_PREFIX = "ballot-log:"; // localStorage: the last checkpoint seen, per poll

export class LogError extends Error {}
export class NotYetInLog extends Error {}

function b64decode(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function b64encode(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// RFC 6962: leaves and nodes hashed with distinct prefixes.
const leafHash = (entry) => sha256(concat(new Uint8Array([0]), entry));
const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

async function rootOf(hashes) {
  let level = hashes;
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(await nodeHash(level[i], level[i + 1]));
    if (level.length % 2) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

// tlog-tiles: 1234067 → x001/x234/067.
export function tileIndexPath(index) {
  let digits = String(index);
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, "0");
  const groups = digits.match(/.../g);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join("/");
}

function tilePath(level, index, size) {
  const count = Math.floor(size / TILE_WIDTH ** (level === "entries" ? 0 : level));
  const full = (index + 1) * TILE_WIDTH <= count;
  return `tile/${level}/${tileIndexPath(index)}${full ? "" : `.p/${count % TILE_WIDTH}`}`;
}

// --- signed notes (C2SP signed-note, Ed25519) ------------------------------------------------

async function keyId(name, publicKey) {
  const digest = await sha256(concat(utf8.encode(`${name}\n`), new Uint8Array([1]), publicKey));
  return digest.slice(0, 4);
}

function parseVkey(vkey) {
  const [name, hexId, material] = [vkey.split("+")[0], vkey.split("+")[1], vkey.split("+").slice(2).join("+")];
  const bytes = b64decode(material);
  if (bytes.length !== 33 || bytes[0] !== 1) throw new LogError(_("a log key is not an Ed25519 key"));
  return { name, hexId, publicKey: bytes.slice(1) };
}

async function openNote(note, vkeys) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new LogError(_("the checkpoint is not a signed note"));
  const text = note.slice(0, split + 1);
  const keys = vkeys.map(parseVkey);
  let verified = false;
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!match) throw new LogError(_("the checkpoint has a malformed signature line"));
    const signature = b64decode(match[2]);
    for (const key of keys) {
      const id = await keyId(key.name, key.publicKey);
      const hexId = [...id].map((b) => b.toString(16).padStart(2, "0")).join("");
      if (key.name !== match[1] || hexId !== key.hexId || !sameBytes(id, signature.slice(0, 4))) continue;
      const publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
      if (!(await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature.slice(4), utf8.encode(text)))) {
        throw new LogError(_("the checkpoint's signature does not verify"));
      }
      verified = true;
    }
  }
  if (!verified) throw new LogError(_("the checkpoint is not signed by a known log key"));
  const [origin, size, root] = text.split("\n");
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new LogError(_("the checkpoint's size is not a number"));
  return { origin, size: Number(size), root: b64decode(root) };
}

// --- the tree, from tiles --------------------------------------------------------------------

class Tiles {
  constructor(base, size) {
    this.base = base;
    this.size = size;
    this.fetched = new Map();
  }

  async get(path) {
    if (!this.fetched.has(path)) {
      this.fetched.set(
        path,
        fetch(this.base + path).then(async (response) => {
          if (!response.ok) throw new LogError(_("the log's {path} is missing (HTTP {status})", { path, status: response.status }));
          return new Uint8Array(await response.arrayBuffer());
        }),
      );
    }
    return this.fetched.get(path);
  }

  // The 2**rise hashes at height 8·level from `start` on, in the tree of this.size.
  async hashes(level, start, count) {
    const index = Math.floor(start / TILE_WIDTH);
    const tile = await this.get(tilePath(level, index, this.size));
    const first = (start - index * TILE_WIDTH) * HASH_BYTES;
    if (tile.length < first + count * HASH_BYTES) throw new LogError(_("the log's tile {tile} is short", { tile: `${level}/${index}` }));
    const out = [];
    for (let i = 0; i < count; i++) out.push(tile.slice(first + i * HASH_BYTES, first + (i + 1) * HASH_BYTES));
    return out;
  }

  // MTH(D[lo:hi]) of RFC 6962, read from the tiles, with `own` (index → leaf hash) put in place
  // of what the tiles say for those leaves: so a root that matches proves their inclusion.
  async mth(lo, hi, own) {
    const n = hi - lo;
    if (n === 1 && own.has(lo)) return own.get(lo);
    const aligned = (n & (n - 1)) === 0 && lo % n === 0;
    const holdsOwn = [...own.keys()].some((i) => i >= lo && i < hi);
    if (aligned && !holdsOwn) {
      const height = Math.log2(n);
      const level = Math.floor(height / 8);
      const step = TILE_WIDTH ** level;
      return rootOf(await this.hashes(level, lo / step, n / step));
    }
    let k = 1;
    while (k * 2 < n) k *= 2;
    return nodeHash(await this.mth(lo, lo + k, own), await this.mth(lo + k, hi, own));
  }
}

function unbundle(data) {
  const entries = [];
  for (let at = 0; at < data.length; ) {
    const length = (data[at] << 8) | data[at + 1];
    entries.push(data.slice(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return entries;
}

async function ballotHashOf(entry) {
  const signed = ["vote/v1", entry.poll_id, entry.option_id, entry.vote_id, entry.idempotency_key, String(entry.created_at)];
  const signature = atob(entry.signature.replace(/-/g, "+").replace(/_/g, "/"));
  const sigBytes = Uint8Array.from(signature, (c) => c.charCodeAt(0));
  return b64urlEncode(await sha256(concat(utf8.encode(signed.join("\n")), sigBytes)));
}

function lastSeen(pollId) {
  try {
    const seen = JSON.parse(localStorage.getItem(SEEN_PREFIX + pollId));
    return seen && { size: seen.size, root: b64decode(seen.root) };
  } catch {
    return null;
  }
}

// Checks that the ballot with this seq (and ballot hash, or its first characters from a tracker
// code) is in the poll's public log. Resolves with the entry number and the log's size; throws
// NotYetInLog while the log has not reached it, LogError when something does not check out.
export async function checkInLog({ pollId, seq, ballotHash, voteId }) {
  const base = `/api/v1/polls/${encodeURIComponent(pollId)}/log/`;
  const [keysResponse, noteResponse] = await Promise.all([fetch("/api/v1/keys"), fetch(`${base}checkpoint`)]);
  if (!keysResponse.ok || !noteResponse.ok) throw new LogError(_("the log or its keys could not be fetched"));
  const { log } = await keysResponse.json();
  const checkpoint = await openNote(await noteResponse.text(), log.vkeys);
  if (!checkpoint.origin.endsWith(`/polls/${pollId}`)) throw new LogError(_("the checkpoint is for another poll"));
  const index = seq - 1;
  if (index >= checkpoint.size) throw new NotYetInLog(_("not in the log yet"));
  const tiles = new Tiles(base, checkpoint.size);
  const bundleIndex = Math.floor(index / TILE_WIDTH);
  const bundle = unbundle(await tiles.get(tilePath("entries", bundleIndex, checkpoint.size)));
  const data = bundle[index - bundleIndex * TILE_WIDTH];
  if (!data) throw new LogError(_("entry {seq} is missing from the log", { seq }));
  let entry;
  try {
    entry = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch {
    throw new LogError(_("entry {seq} is not a ballot", { seq }));
  }
  const hash = await ballotHashOf(entry);
  if (entry.poll_id !== pollId || (voteId && entry.vote_id !== voteId) || !hash.startsWith(ballotHash)) {
    throw new LogError(_("entry {seq} of the log is not this ballot", { seq }));
  }
  const own = new Map([[index, await leafHash(data)]]);
  if (!sameBytes(await tiles.mth(0, checkpoint.size, own), checkpoint.root)) {
    throw new LogError(_("the log's tree does not match its signed checkpoint"));
  }
  const seen = lastSeen(pollId);
  if (seen && seen.size > checkpoint.size) throw new LogError(_("the log is shorter than when this device last saw it"));
  if (seen && seen.size > 0 && !sameBytes(await tiles.mth(0, seen.size, new Map()), seen.root)) {
    throw new LogError(_("the log does not extend the one this device saw before"));
  }
  try {
    localStorage.setItem(SEEN_PREFIX + pollId, JSON.stringify({ size: checkpoint.size, root: b64encode(checkpoint.root) }));
  } catch {
    // Storage full or off: the next check cannot compare, which it says nothing about.
  }
  return { entry: seq, size: checkpoint.size };
}

// "demo:12:AbCdEfGh": poll, entry, the ballot hash's first 8 characters; short enough to write down.
export function trackerCode(pollId, seq, ballotHash) {
  return `${pollId}:${seq}:${ballotHash.slice(0, 8)}`;
}

export function parseTracker(text) {
  const match = /^\s*([A-Za-z0-9_-]{1,64}):([1-9][0-9]{0,15}):([A-Za-z0-9_-]{8,43})\s*$/.exec(text);
  return match && { pollId: match[1], seq: Number(match[2]), ballotHash: match[3] };
}

// The receipt as a file the voter keeps: what /verify reads back.
export function receiptFile(pollId, receipt) {
  const payload = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(receipt.payload.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0))));
  const body = JSON.stringify({ poll_id: pollId, seq: payload.seq, ballot_hash: payload.ballot_hash, vote_id: payload.vote_id, receipt }, null, 1);
  return { payload, url: URL.createObjectURL(new Blob([body], { type: "application/json" })) };
}

const RETRY_MS = 1000; // the log takes a vote in within a second of its receipt
const MAX_TRIES = 30;

// For the poll page: checks a confirmed vote in the log, retrying while the log has not reached
// it, and reports words for the voter, the tracker code and a link to save the receipt.
export async function watchInLog(record, report) {
  const { payload, url } = receiptFile(record.pollId, record.receipt);
  const tracker = trackerCode(record.pollId, payload.seq, payload.ballot_hash);
  const saved = { tracker, file: url };
  for (let tries = 1; ; tries++) {
    try {
      const { entry } = await checkInLog({
        pollId: record.pollId,
        seq: payload.seq,
        ballotHash: payload.ballot_hash,
        voteId: payload.vote_id,
      });
      report({ ...saved, words: _("In the public ballot log, entry {entry}", { entry: formatNumber(entry) }) });
      return;
    } catch (error) {
      if (error instanceof NotYetInLog && tries < MAX_TRIES) {
        report({ ...saved, words: _("Waiting to appear in the public ballot log…") });
      } else if (error instanceof LogError || error instanceof NotYetInLog) {
        report({ ...saved, words: _("Could not verify it in the public ballot log: {reason}", { reason: error.message }), failed: true });
        return;
      } else {
        // Offline, say: not a finding about the log. Tried again on the next load.
        report({ ...saved, words: _("Not checked in the public ballot log yet (no network).") });
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}
