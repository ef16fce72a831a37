// The proof-of-work solver (docs/protocol.md, Eligibility), in its own Web Worker so that the
// page never freezes. Counts nonces up from 0, as app/eligibility/stamps.py does, and answers
// with the first whose SHA-256 starts with `difficulty` zero bits. A plain script: no imports.
//
// SHA-256 is computed here rather than with crypto.subtle.digest: one promise per hash caps Web
// Crypto at ~50,000 hashes a second, while this loop, which hashes the input's fixed prefix once
// (its full 64-byte blocks) and only the tail per nonce, is many times faster (docs/abuse.md).
// It checks itself against Web Crypto first, and uses Web Crypto alone if they ever disagree.

const utf8 = new TextEncoder();
const PROGRESS_EVERY = 1 << 16; // nonces between progress reports
const WEB_CRYPTO_IN_FLIGHT = 128;

// FIPS 180-4's constants: the first 32 bits of the fractional parts of the cube roots of the
// first 64 primes (K) and of the square roots of the first 8 (H0).
function firstPrimes(count) {
  const found = [];
  for (let n = 2; found.length < count; n++) if (found.every((p) => n % p !== 0)) found.push(n);
  return found;
}
const fraction32 = (x) => ((x - Math.floor(x)) * 2 ** 32) >>> 0;
const PRIMES = firstPrimes(64);
const K = Uint32Array.from(PRIMES, (p) => fraction32(Math.cbrt(p)));
const H0 = Uint32Array.from(PRIMES.slice(0, 8), (p) => fraction32(Math.sqrt(p)));
const W = new Uint32Array(64);

// One compression of the 64-byte block at `offset` of `bytes` into `state`.
function compress(state, bytes, offset) {
  for (let i = 0; i < 16; i++) {
    const j = offset + 4 * i;
    W[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15];
    const y = W[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let e = state[4], f = state[5], g = state[6], h = state[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

// SHA-256 of `prefix` + each nonce's decimal digits, the prefix's full blocks hashed once.
function hasher(prefix) {
  const bytes = utf8.encode(prefix);
  const full = bytes.length - (bytes.length % 64);
  const midstate = Uint32Array.from(H0);
  for (let offset = 0; offset < full; offset += 64) compress(midstate, bytes, offset);
  const rest = bytes.subarray(full);
  const tail = new Uint8Array(128);
  const state = new Uint32Array(8);
  return (nonce) => {
    const digits = String(nonce);
    const length = rest.length + digits.length;
    const blocks = length + 9 <= 64 ? 1 : 2;
    tail.fill(0);
    tail.set(rest);
    for (let i = 0; i < digits.length; i++) tail[rest.length + i] = digits.charCodeAt(i);
    tail[length] = 0x80;
    const bits = (full + length) * 8; // under 2^32: inputs are a few hundred bytes
    const end = blocks * 64;
    tail[end - 4] = bits >>> 24;
    tail[end - 3] = (bits >>> 16) & 0xff;
    tail[end - 2] = (bits >>> 8) & 0xff;
    tail[end - 1] = bits & 0xff;
    state.set(midstate);
    compress(state, tail, 0);
    if (blocks === 2) compress(state, tail, 64);
    return state;
  };
}

function zeroBitsOfWords(words) {
  let bits = 0;
  for (const word of words) {
    if (word !== 0) return bits + Math.clz32(word);
    bits += 32;
  }
  return bits;
}

function zeroBitsOfBytes(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte !== 0) return bits + Math.clz32(byte) - 24;
    bits += 8;
  }
  return bits;
}

async function agreesWithWebCrypto(prefix, hash) {
  for (const nonce of [0, 7, 123456789]) {
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(prefix + nonce)));
    const words = hash(nonce);
    for (let i = 0; i < 32; i++) if (expected[i] !== (words[i >> 2] >>> (24 - 8 * (i & 3))) % 256) return false;
  }
  return true;
}

function solveHere(hash, difficulty) {
  for (let nonce = 0; ; nonce++) {
    if (zeroBitsOfWords(hash(nonce)) >= difficulty) return String(nonce);
    if (nonce % PROGRESS_EVERY === PROGRESS_EVERY - 1) self.postMessage({ tried: nonce + 1 });
  }
}

async function solveWithWebCrypto(prefix, difficulty) {
  for (let start = 0; ; start += WEB_CRYPTO_IN_FLIGHT) {
    const digests = await Promise.all(
      Array.from({ length: WEB_CRYPTO_IN_FLIGHT }, (_, i) =>
        crypto.subtle.digest("SHA-256", utf8.encode(prefix + (start + i))),
      ),
    );
    for (let i = 0; i < WEB_CRYPTO_IN_FLIGHT; i++) {
      if (zeroBitsOfBytes(new Uint8Array(digests[i])) >= difficulty) return String(start + i);
    }
    self.postMessage({ tried: start + WEB_CRYPTO_IN_FLIGHT });
  }
}

async function solve(pollId, publicKey, difficulty) {
  const prefix = `vote-stamp/v1\n${pollId}\n${publicKey}\n`;
  const hash = hasher(prefix);
  if (await agreesWithWebCrypto(prefix, hash)) return { stamp: solveHere(hash, difficulty), engine: "own" };
  return { stamp: await solveWithWebCrypto(prefix, difficulty), engine: "web-crypto" };
}

self.onmessage = (event) => {
  const { pollId, publicKey, difficulty } = event.data;
  solve(pollId, publicKey, difficulty).then(
    (found) => self.postMessage(found),
    (error) => self.postMessage({ error: String(error?.message ?? error) }),
  );
};
