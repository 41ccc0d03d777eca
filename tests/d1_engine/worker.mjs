// A stand-in for Cloudflare D1's REST API, run by Miniflare on Cloudflare's own workerd runtime and
// D1 engine. It answers the paths below CLOUDFLARE_API_BASE_URL exactly as api.cloudflare.com/client/v4
// names them, with Cloudflare's envelope ({success, errors: [{code, message}], messages, result}):
//
//   POST /accounts/{account}/d1/database/{database}/query              rows as objects
//   POST /accounts/{account}/d1/database/{database}/raw                columns and rows as arrays
//   GET  /accounts/{account}/d1/database/{database}                    database details (file_size)
//   GET  /accounts/{account}/d1/database/{database}/time_travel/bookmark
//
// What is real: every statement runs in workerd's D1 engine with D1's limits (100 bound parameters,
// 100,000 bytes of SQL, no BEGIN/SAVEPOINT, no PRAGMAs beyond D1's list), and a {"batch": [...]} body
// runs through D1's db.batch(), which is one transaction: all statements take effect or none, as
// Cloudflare documents for batches. meta (changes, rows_read, rows_written, size_after) is the engine's.
//
// What is simulated: the bearer token check (401/403 and 400 for a malformed header, with Cloudflare's
// codes), the 7404 "database not found" and 7500 SQL error envelopes, and Time Travel bookmarks (a
// counter of write requests, not a storage position; restore is not simulated). /raw of a single
// statement uses the engine's raw() (exact column order, no meta from the engine); /raw of a batch
// derives the columns from row objects. A "sql" with several statements joined by ";" runs only as
// far as the engine's prepare() takes it. There is no rate limit, quota or network fault: the tests
// inject those in front of this engine.

import { runBatch, withModes } from "./modes.mjs";

const ROUTE = /^(?:\/client\/v4)?\/accounts\/([^/]+)\/d1\/database\/([^/]+)(\/.*)?$/;

function reply(status, body) {
  return Response.json(body, { status });
}

function ok(result) {
  return reply(200, { success: true, errors: [], messages: [], result });
}

function failure(status, code, message, extra = {}) {
  return reply(status, { success: false, errors: [{ code, message, ...extra }], messages: [], result: null });
}

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

// Time Travel, simulated: every request that changed the database moves the bookmark on.
const history = new Map(); // database id -> [{ at: ms, bookmark }]

async function bookmarkFor(database, sequence) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${database}:${sequence}`));
  const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const hex8 = (n) => n.toString(16).padStart(8, "0");
  return `${hex8(sequence)}-${hex8(Math.floor(Date.now() / 1000))}-00000000-${hash.slice(0, 32)}`;
}

async function timeline(database) {
  if (!history.has(database)) history.set(database, [{ at: 0, bookmark: await bookmarkFor(database, 0) }]);
  return history.get(database);
}

async function recordWrite(database) {
  const entries = await timeline(database);
  entries.push({ at: Date.now(), bookmark: await bookmarkFor(database, entries.length) });
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
  }
  return items;
}

async function runQueries(db, database, items, raw) {
  const statements = items.map((item) => db.prepare(item.sql).bind(...(item.params ?? [])));
  if (raw && statements.length === 1) {
    const began = Date.now();
    const [columns, ...rows] = await statements[0].raw({ columnNames: true });
    const meta = { served_by: "estateflow-local-d1", duration: Date.now() - began, changes: 0, rows_read: 0, rows_written: 0 };
    return [{ success: true, meta, results: { columns: columns ?? [], rows } }];
  }
  const results = await runBatch(db, statements, items);
  if (results.some((r) => r.meta?.changed_db)) await recordWrite(database);
  return results.map((r) => {
    if (!raw) return { success: r.success, meta: r.meta, results: r.results ?? [] };
    const rows = r.results ?? [];
    const columns = rows.length ? Object.keys(rows[0]) : [];
    return { success: r.success, meta: r.meta, results: { columns, rows: rows.map((row) => columns.map((c) => row[c])) } };
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

const worker = {
  async fetch(request, env) {
    const url = new URL(request.url);
    const route = ROUTE.exec(url.pathname);
    if (!route) return failure(404, 7000, "No route for that URI");
    const [, account, database, action = ""] = route;
    const refused = authFailure(request, env, account);
    if (refused) return refused;
    const binding = JSON.parse(env.DATABASES)[database];
    if (!binding) return failure(404, 7404, `The database ${database} could not be found`);
    const db = env[binding];
    const method = request.method;

    if (action === "" && method === "GET") return ok(await details(db, database));
    if (action === "/time_travel/bookmark" && method === "GET") {
      const entries = await timeline(database);
      const at = url.searchParams.get("timestamp");
      const limit = at ? Date.parse(at) : Infinity;
      if (Number.isNaN(limit)) return failure(400, 7400, "timestamp is not an ISO 8601 date-time");
      const found = entries.filter((e) => e.at <= limit).at(-1) ?? entries[0];
      return ok({ bookmark: found.bookmark });
    }
    if (action === "/time_travel/restore") {
      return failure(501, 7500, "Time Travel restore is not simulated by the local D1 engine");
    }
    if ((action === "/query" || action === "/raw") && method === "POST") {
      let items;
      try {
        items = queries(await request.json());
      } catch (error) {
        return failure(400, 7400, `The request is malformed: ${error.message}`);
      }
      try {
        return ok(await runQueries(db, database, items, action === "/raw"));
      } catch (error) {
        return sqlFailure(error);
      }
    }
    return failure(404, 7000, "No route for that URI");
  },
};

// Faults and the non-atomic mode on demand, for tests (modes.mjs).
export default withModes(worker, (request, env) => authFailure(request, env, env.ACCOUNT_ID));
