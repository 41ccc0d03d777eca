// What Cloudflare documents about the service around the SQL, enforced here so that the engine is at
// least as strict as D1 itself, and the knobs that make it misbehave on demand.
//
// - The API's rate limit (developers.cloudflare.com/fundamentals/api/reference/limits): 1,200 requests
//   per 5 minutes per user; past it "all API calls for the next five minutes will be blocked, receiving
//   a HTTP 429 response", with `retry-after`: "the number of seconds, rounded up, until more capacity is
//   available". The engine has one user (its token), so the budget is the engine's.
// - A per-request ceiling (`ceiling_bytes`): a /query or /raw body larger than it is answered with the
//   error D1 gives when a request does too much at once (debug-d1's table: "D1 DB storage operation
//   exceeded timeout which caused object to be reset."; its fix is to make the work smaller), applying
//   nothing.
// - Durations: meta.duration and meta.timings.sql_duration_ms (the REST schema: "the duration of the
//   SQL query execution inside the database", in ms) as measured around the engine's batch, plus
//   `ms_per_kb` of each statement's SQL, to tell a client that work of that size is slow without
//   making the test wait for it.
//
// `POST /__engine/service` (with the engine's token) changes the knobs: a JSON object merged into
// `settings` ({"reset": true} first restores the launch settings and empties every counter).
// `GET /__engine/service` shows them, with what the engine observed (requests counted, signed-URL
// downloads and whether they carried an Authorization header).

import { failure, ok } from "./envelope.mjs";

const STORAGE_TIMEOUT = "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset.";

export const settings = {
  rate_limit: { requests: 1200, window_seconds: 300, block_seconds: 300 },
  ceiling_bytes: null,
  ceiling_status: 400,
  ms_per_kb: 0,
  export: { available: true, polls: 1, error: null },
  restore_limit: { restores: 10, window_seconds: 600 },
};
let launched = null; // the settings as launched, for {"reset": true}

export const observed = { requests: 0, limited: 0, downloads: [] };
const rate = { sent: [], blocked_until: 0 };
const listeners = []; // functions called on reset (other modules' state)

export function onReset(listener) {
  listeners.push(listener);
}

export function configure(env) {
  if (launched) return;
  const limit = /^(\d+)\/(\d+)$/.exec(env.RATE_LIMIT ?? "");
  if (env.RATE_LIMIT === "off") settings.rate_limit.requests = 0;
  else if (limit) {
    settings.rate_limit.requests = Number(limit[1]);
    settings.rate_limit.window_seconds = Number(limit[2]);
    settings.rate_limit.block_seconds = Number(limit[2]);
  }
  launched = structuredClone(settings);
}

// null when the request may go on; else the 429 Cloudflare answers.
export function rateLimited(now = Date.now()) {
  observed.requests += 1;
  const { requests, window_seconds, block_seconds } = settings.rate_limit;
  if (!requests) return null;
  if (now < rate.blocked_until) return limitedReply(rate.blocked_until - now);
  while (rate.sent.length && rate.sent[0] <= now - window_seconds * 1000) rate.sent.shift();
  if (rate.sent.length >= requests) {
    rate.blocked_until = now + block_seconds * 1000;
    return limitedReply(block_seconds * 1000);
  }
  rate.sent.push(now);
  return null;
}

function limitedReply(ms) {
  observed.limited += 1;
  const headers = { "Retry-After": String(Math.ceil(ms / 1000)) };
  return failure(429, 971, "Please wait and consider throttling your request speed", {}, headers);
}

// null when the body is within the ceiling; else D1's storage-timeout reset, nothing applied.
export function overCeiling(bodyBytes) {
  if (settings.ceiling_bytes == null || bodyBytes <= settings.ceiling_bytes) return null;
  return failure(settings.ceiling_status, 7500, STORAGE_TIMEOUT);
}

// meta with D1's documented durations: the batch's measured time shared by its statements, plus
// ms_per_kb of each statement's own SQL.
export function withDurations(metas, items, measuredMs) {
  return metas.map((meta, i) => {
    const own = measuredMs / metas.length + (settings.ms_per_kb * byteLength(items[i]?.sql ?? "")) / 1024;
    return { ...meta, duration: own, timings: { sql_duration_ms: own } };
  });
}

function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

export async function control(request) {
  if (request.method === "GET") {
    return ok({ settings, observed, rate: { sent: rate.sent.length, blocked_until: rate.blocked_until } });
  }
  if (request.method !== "POST") return failure(405, 7000, "GET or POST");
  let changes;
  try {
    changes = await request.json();
  } catch (error) {
    return failure(400, 7400, `not JSON: ${error.message}`);
  }
  if (changes.reset) {
    Object.assign(settings, structuredClone(launched));
    Object.assign(observed, { requests: 0, limited: 0, downloads: [] });
    Object.assign(rate, { sent: [], blocked_until: 0 });
    for (const listener of listeners) listener();
  }
  for (const [key, value] of Object.entries(changes)) {
    if (key === "reset") continue;
    if (!(key in settings)) return failure(400, 7400, `unknown setting ${key}`);
    settings[key] = value && typeof value === "object" && !Array.isArray(value) ? { ...settings[key], ...value } : value;
  }
  return ok({ settings });
}
