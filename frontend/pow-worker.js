// The proof-of-work solver (docs/protocol.md, Eligibility), in its own Web Worker so that the
// page never freezes. Counts nonces up from 0, as app/eligibility/stamps.py does, and answers
// with the first whose SHA-256 starts with `difficulty` zero bits. A plain script: no imports.

const utf8 = new TextEncoder();
const IN_FLIGHT = 128; // digests awaited together: Web Crypto's cost is mostly per call
const PROGRESS_EVERY_MS = 500;

function zeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte !== 0) return bits + Math.clz32(byte) - 24;
    bits += 8;
  }
  return bits;
}

async function solve(pollId, publicKey, difficulty) {
  const prefix = `vote-stamp/v1\n${pollId}\n${publicKey}\n`;
  let reported = Date.now();
  for (let start = 0; ; start += IN_FLIGHT) {
    const digests = await Promise.all(
      Array.from({ length: IN_FLIGHT }, (_, i) => crypto.subtle.digest("SHA-256", utf8.encode(prefix + (start + i)))),
    );
    for (let i = 0; i < IN_FLIGHT; i++) {
      if (zeroBits(new Uint8Array(digests[i])) >= difficulty) return String(start + i);
    }
    if (Date.now() - reported >= PROGRESS_EVERY_MS) {
      reported = Date.now();
      self.postMessage({ tried: start + IN_FLIGHT });
    }
  }
}

self.onmessage = (event) => {
  const { pollId, publicKey, difficulty } = event.data;
  solve(pollId, publicKey, difficulty).then(
    (stamp) => self.postMessage({ stamp }),
    (error) => self.postMessage({ error: String(error?.message ?? error) }),
  );
};
