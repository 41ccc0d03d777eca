// A stand-in for Cloudflare D1's REST API, run by Miniflare on Cloudflare's own workerd runtime and
// D1 engine. It answers the paths below CLOUDFLARE_API_BASE_URL exactly as api.cloudflare.com/client/v4
// names them, with Cloudflare's envelope ({success, errors: [{code, message}], messages, result}):
//
//   POST /accounts/{account}/d1/database/{database}/query              rows as objects
//   POST /accounts/{account}/d1/database/{database}/raw                columns and rows as arrays
//   GET  /accounts/{account}/d1/database/{database}                    database details (file_size)
//   GET  /accounts/{account}/d1/database/{database}/time_travel/bookmark   (timetravel.mjs)
//   POST /accounts/{account}/d1/database/{database}/time_travel/restore    (timetravel.mjs)
//   POST /accounts/{account}/d1/database/{database}/export             polling, a signed URL (export.mjs)
//
// What is real: every statement runs in workerd's D1 engine with D1's limits (100 bound parameters,
// 100,000 bytes of SQL, no BEGIN/SAVEPOINT, no PRAGMAs beyond D1's list), and a {"batch": [...]} body
// runs through D1's db.batch(). meta (changes, rows_read, rows_written, size_after) is the engine's;
// duration and timings.sql_duration_ms are measured around it (service.mjs). Bound parameters must be
// strings, as the REST schema declares them (`params: array of string`): anything else is refused.
// Time Travel restores real snapshots taken with D1's own dump (timetravel.mjs); exports are that dump
// behind a pre-signed URL (export.mjs); the API's rate limit and a per-request ceiling are enforced, and
// can be changed at run time through /__engine/service (service.mjs).
//
// What is simulated: the bearer token check (401/403 and 400 for a malformed header, with Cloudflare's
// codes), the 7404 "database not found" and 7500 SQL error envelopes. /raw of a single statement uses
// the engine's raw() (exact column order, no meta from the engine); /raw of a batch derives the
// columns from row objects. A "sql" with several statements joined by ";" runs only as far as the
// engine's prepare() takes it. Network faults, the daily quota and refused tokens of other kinds are
// injected by the tests in front of this engine.

import { failure, ok } from "./envelope.mjs";
import { exportRoute, signedDownload } from "./export.mjs";
import { configure, control, overCeiling, rateLimited, withDurations } from "./service.mjs";
import { bookmarkRoute, recordWrite, restoreRoute } from "./timetravel.mjs";

import { runBatch, runRead, withModes } from "./modes.mjs";

const ROUTE = /^(?:\/client\/v4)?\/accounts\/([^/]+)\/d1\/database\/([^/]+)(\/.*)?$/;

function sameSecret(given, expected) {
  // Constant time in the length of the expected token.
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

function authFailure(request, env, account) {
  const header = request.headers.get("Authorization") ?? "";
  const bearer = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
  if (!bearer) {
    return failure(400, 6003, "Invalid request headers", {
      error_chain: [{ code: 6111, message: "Invalid format for Authorization header" }],
    });
  }
  if (!sameSecret(bearer[1], env.TOKEN)) return failure(401, 10000, "Authentication error");
  if (account !== env.ACCOUNT_ID) return failure(403, 10000, "Authentication error");
  return null;
}

function sqlFailure(error) {
  const message = String(error?.message ?? error).replace(/^D1_(?:ERROR|TYPE_ERROR|COLUMN_NOTFOUND): /, "");
  return failure(400, 7500, message);
}

function queries(body) {
  const items = Array.isArray(body?.batch) ? body.batch : [body];
  if (!items.length) throw new TypeError("batch is empty");
  for (const item of items) {
    if (typeof item?.sql !== "string" || !item.sql.trim()) throw new TypeError("every query needs a sql string");
    if (item.params !== undefined && !Array.isArray(item.params)) throw new TypeError("params must be an array");
    // The REST schema: `params: optional array of string`.
    if ((item.params ?? []).some((p) => typeof p !== "string")) throw new TypeError("params must be strings");
  }
  return items;
}

async function runQueries(db, database, items, raw) {
  const statements = items.map((item) => db.prepare(item.sql).bind(...(item.params ?? [])));
  const began = Date.now();
  if (raw && statements.length === 1) {
    const [columns, ...rows] = await runRead(items, () => statements[0].raw({ columnNames: true }));
    // raw() gives no meta: a statement that is not a read makes a new Time Travel state, to be safe.
    if (!/^\s*(?:SELECT|WITH|PRAGMA|EXPLAIN|VALUES)\b/i.test(items[0].sql)) recordWrite(database);
    const meta = { served_by: "estateflow-local-d1", changes: 0, rows_read: 0, rows_written: 0 };
    const [timed] = withDurations([meta], items, Date.now() - began);
    return [{ success: true, meta: timed, results: { columns: columns ?? [], rows } }];
  }
  const results = await runBatch(db, statements, items);
  const metas = withDurations(
    results.map((r) => r.meta),
    items,
    Date.now() - began,
  );
  if (results.some((r) => r.meta?.changed_db)) recordWrite(database);
  return results.map((r, i) => {
    if (!raw) return { success: r.success, meta: metas[i], results: r.results ?? [] };
    const rows = r.results ?? [];
    const columns = rows.length ? Object.keys(rows[0]) : [];
    return { success: r.success, meta: metas[i], results: { columns, rows: rows.map((row) => columns.map((c) => row[c])) } };
  });
}

async function details(db, database) {
  const probe = await db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'").run();
  return {
    uuid: database,
    name: database,
    version: "production",
    created_at: new Date(0).toISOString(),
    num_tables: probe.results[0].n,
    file_size: probe.meta.size_after ?? null,
  };
}

async function queryRoute(request, db, database, raw) {
  const text = await request.text();
  const tooLarge = overCeiling(new TextEncoder().encode(text).length);
  if (tooLarge) return tooLarge;
  let items;
  try {
    items = queries(JSON.parse(text));
  } catch (error) {
    return failure(400, 7400, `The request is malformed: ${error.message}`);
  }
  try {
    return ok(await runQueries(db, database, items, raw));
  } catch (error) {
    return sqlFailure(error);
  }
}

const worker = {
  async fetch(request, env) {
    configure(env);
    const url = new URL(request.url);
    const download = signedDownload(request, url);
    if (download) return download;
    if (url.pathname === "/__engine/service") {
      return authFailure(request, env, env.ACCOUNT_ID) ?? control(request);
    }
    const route = ROUTE.exec(url.pathname);
    if (!route) return failure(404, 7000, "No route for that URI");
    const [, account, database, action = ""] = route;
    const refused = authFailure(request, env, account);
    if (refused) return refused;
    const limited = rateLimited();
    if (limited) return limited;
    const binding = JSON.parse(env.DATABASES)[database];
    if (!binding) return failure(404, 7404, `The database ${database} could not be found`);
    const db = env[binding];
    const method = request.method;

    if (action === "" && method === "GET") return ok(await details(db, database));
    if (action === "/time_travel/bookmark" && method === "GET") return bookmarkRoute(db, database, url);
    if (action === "/time_travel/restore" && method === "POST") return restoreRoute(db, database, url);
    if (action === "/export" && method === "POST") return exportRoute(request, db, database, url);
    if ((action === "/query" || action === "/raw") && method === "POST") {
      return queryRoute(request, db, database, action === "/raw");
    }
    return failure(404, 7000, "No route for that URI");
  },
};

// Faults and the non-atomic mode on demand, for tests (modes.mjs).
export default withModes(worker, (request, env) => authFailure(request, env, env.ACCOUNT_ID));
