// Time Travel as Cloudflare documents it (developers.cloudflare.com/d1/reference/time-travel and the
// REST schema of GET .../time_travel/bookmark and POST .../time_travel/restore), over real snapshots.
//
// Every request that changed the database makes a new state. A state's bookmark is
// `<state number, 8 hex>-<its unix seconds, 8 hex>-00000000-<32 hex>`: lexicographically sortable,
// oldest first, as documented. When a bookmark is handed out (GET bookmark, an export's at_bookmark, a
// restore's previous_bookmark) the engine takes a snapshot of that state with D1's own dump
// (Miniflare's `PRAGMA miniflare_d1_export`, the code D1 exports with), so that restoring to it gives
// back exactly that state. A bookmark for a timestamp is the state at or before it; a state nobody
// asked a bookmark for has no snapshot, and asking for it is refused (the real service keeps every
// minute for 30 days; the engine keeps only what it was shown, and says so rather than guess).
//
// Restore drops every table and view of ours and replays the snapshot in one batch (one transaction):
// the result has a new bookmark, and previous_bookmark is the state before it, so it can be undone.
// At most `settings.restore_limit` restores per window per database (limits: "10 restores per 10
// minute (per database)").

import { failure, ok } from "./envelope.mjs";
import { onReset, settings } from "./service.mjs";

const EXPORT_PRAGMA = "PRAGMA miniflare_d1_export(?,?,?);";
const KEEP_SNAPSHOTS = 64;

const databases = new Map(); // id -> { seq, times: Map(seq -> ms), snapshots: Map(seq -> {bookmark, statements}), restores: [ms] }
onReset(() => {
  for (const state of databases.values()) state.restores = [];
});

function stateOf(database) {
  if (!databases.has(database)) {
    databases.set(database, { seq: 0, times: new Map([[0, Date.now()]]), snapshots: new Map(), restores: [] });
  }
  return databases.get(database);
}

export function recordWrite(database) {
  const state = stateOf(database);
  state.seq += 1;
  state.times.set(state.seq, Date.now());
}

async function bookmarkFor(database, seq, ms) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${database}:${seq}`));
  const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const hex8 = (n) => n.toString(16).padStart(8, "0");
  return `${hex8(seq)}-${hex8(Math.floor(ms / 1000))}-00000000-${hash.slice(0, 32)}`;
}

// D1's own dump of the database: the statements `wrangler d1 export` would write.
export async function dumpStatements(db, { noSchema = false, noData = false, tables = [] } = {}) {
  const raw = await db.prepare(EXPORT_PRAGMA).bind(noSchema ? 1 : 0, noData ? 1 : 0, ...tables).raw();
  return raw[0];
}

// The bookmark of the current state, with its snapshot taken if it has none yet.
export async function snapshot(db, database) {
  const state = stateOf(database);
  for (let attempt = 0; attempt < 5; attempt++) {
    const seq = state.seq;
    if (state.snapshots.has(seq)) return state.snapshots.get(seq).bookmark;
    const statements = await dumpStatements(db);
    if (state.seq !== seq) continue; // written meanwhile: the dump may be of a later state
    const bookmark = await bookmarkFor(database, seq, state.times.get(seq));
    state.snapshots.set(seq, { bookmark, statements });
    while (state.snapshots.size > KEEP_SNAPSHOTS) state.snapshots.delete(state.snapshots.keys().next().value);
    return bookmark;
  }
  throw new Error("the database kept changing while its snapshot was taken");
}

export function snapshotStatements(database, bookmark) {
  for (const entry of stateOf(database).snapshots.values()) if (entry.bookmark === bookmark) return entry.statements;
  return null;
}

// The bookmark of the state at or before `timestamp` (ISO 8601), or an error Response.
async function bookmarkAt(db, database, timestamp) {
  const limit = Date.parse(timestamp);
  if (Number.isNaN(limit)) return failure(400, 7400, "timestamp is not an ISO 8601 date-time");
  const state = stateOf(database);
  let seq = 0;
  for (const [n, ms] of state.times) if (ms <= limit) seq = n;
  if (seq === state.seq) return snapshot(db, database);
  const kept = state.snapshots.get(seq);
  if (kept) return kept.bookmark;
  return failure(
    400,
    7500,
    `the local D1 engine has no snapshot of the state at ${timestamp}: it keeps only states whose bookmark was asked for`,
  );
}

export async function bookmarkRoute(db, database, url) {
  const timestamp = url.searchParams.get("timestamp");
  const found = timestamp ? await bookmarkAt(db, database, timestamp) : await snapshot(db, database);
  return found instanceof Response ? found : ok({ bookmark: found });
}

export async function restoreRoute(db, database, url) {
  const state = stateOf(database);
  const { restores, window_seconds } = settings.restore_limit;
  const now = Date.now();
  state.restores = state.restores.filter((ms) => ms > now - window_seconds * 1000);
  if (restores && state.restores.length >= restores) {
    return failure(429, 7429, `Too many restores: at most ${restores} per ${window_seconds / 60} minutes per database`);
  }
  let bookmark = url.searchParams.get("bookmark");
  const timestamp = url.searchParams.get("timestamp");
  if (!bookmark === !timestamp) return failure(400, 7400, "Provide either a bookmark or a timestamp");
  if (timestamp) {
    const found = await bookmarkAt(db, database, timestamp);
    if (found instanceof Response) return found;
    bookmark = found;
  }
  const statements = snapshotStatements(database, bookmark);
  if (!statements) return failure(400, 7400, `Bookmark ${bookmark} is not valid for this database`);
  const previous = await snapshot(db, database);
  await db.batch([...(await dropEverything(db)), ...statements.map((sql) => db.prepare(sql))]);
  recordWrite(database);
  state.restores.push(now);
  const restored = await bookmarkFor(database, state.seq, state.times.get(state.seq));
  state.snapshots.set(state.seq, { bookmark: restored, statements });
  return ok({ bookmark: restored, previous_bookmark: previous, message: "Database restored successfully" });
}

async function dropEverything(db) {
  const { results } = await db
    .prepare(
      "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')" +
        " AND name NOT LIKE 'sqlite/_%' ESCAPE '/' AND name NOT LIKE '/_cf/_%' ESCAPE '/' ORDER BY type DESC",
    )
    .all();
  const quote = (name) => `"${name.replaceAll('"', '""')}"`;
  return results.map((r) => db.prepare(`DROP ${r.type === "view" ? "VIEW" : "TABLE"} IF EXISTS ${quote(r.name)}`));
}
