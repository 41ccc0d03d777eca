// Misbehaviour on demand, for the tests of the import ledger's protocol. Cloudflare documents a REST
// batch only as "a batch query object": nothing says it is one transaction, nor that an answer that
// never arrived means nothing was applied. So the engine can do what the contract allows:
//
//   atomic: false   a batch's items run one by one, each committed as it runs; an item that fails
//                   stops the batch there, with the items before it applied (a prefix)
//   faults          the next request (after `skip` others) whose body contains `match` applies its
//                   first `apply` items (or all of them, when `apply` is missing), one by one, and
//                   then its answer is lost: the client gets a 504 Gateway Time-out instead. A fault
//                   with `"reads": true` meets single statements to /raw instead (the client's reads,
//                   such as a backup's pages): the statement runs, then its answer is lost
//
//   POST /__estateflow/modes  {"atomic": false, "faults": [{"match": "INSERT INTO professionals", "apply": 3}]}
//   GET  /__estateflow/modes  the modes now, the faults not yet used, the answers lost so far ("lost") and
//                             how many statements the last request that met a fault had ("last_items")
//
// Both need the engine's bearer token. Modes are the engine's, for every database, until set again:
// the tests set them through the `engine_modes` fixture, which puts them back after each test.

const initial = () => ({ atomic: true, faults: [], lost: 0, last_items: 0 });
let modes = initial();
let lostBefore = 0; // answers lost before the request being served (requests are served one at a time)

function matching(items, read = false) {
  const body = JSON.stringify(items);
  const index = modes.faults.findIndex((f) => (f.reads === true) === read && body.includes(f.match ?? ""));
  if (index < 0) return null;
  const fault = modes.faults[index];
  if ((fault.skip ?? 0) > 0) {
    fault.skip -= 1;
    return null;
  }
  modes.faults.splice(index, 1);
  return fault;
}

// Runs `statements` (prepared from `items`) as the modes say; returns one result per statement, as
// db.batch() does. A lost answer still returns (the worker builds its response), and `withModes` below
// replaces that response with the lost answer.
export async function runBatch(db, statements, items) {
  const fault = matching(items);
  if (modes.atomic && !fault) return db.batch(statements);
  const upto = fault ? Math.min(fault.apply ?? statements.length, statements.length) : statements.length;
  const results = [];
  for (let i = 0; i < upto; i++) results.push(await statements[i].all());
  if (fault) {
    modes.lost += 1;
    modes.last_items = statements.length;
    const skipped = { success: true, meta: { changes: 0, rows_read: 0, rows_written: 0, duration: 0 }, results: [] };
    while (results.length < statements.length) results.push(skipped);
  }
  return results;
}

// Runs one statement sent alone to /raw (`run`); a fault armed for reads lets it run, then loses the answer.
export async function runRead(items, run) {
  const fault = matching(items, true);
  const result = await run();
  if (fault) {
    modes.lost += 1;
    modes.last_items = 1;
  }
  return result;
}

function lostAnswer() {
  // What Cloudflare's edge answers when the work behind it does not answer in time. (A worker cannot
  // break the client's connection itself: Miniflare's server in front ends an aborted body cleanly.)
  const page = "<html><head><title>504 Gateway Time-out</title></head><body>504 Gateway Time-out</body></html>";
  return new Response(page, { status: 504, headers: { "Content-Type": "text/html" } });
}

function admin(request, body) {
  if (request.method === "POST") {
    modes = { ...initial(), atomic: body.atomic ?? true, faults: Array.isArray(body.faults) ? body.faults : [] };
  }
  return Response.json({ success: true, errors: [], messages: [], result: modes });
}

// The worker's fetch, with the admin path in front and lost answers behind.
export function withModes(worker, authorised) {
  return {
    async fetch(request, env, ctx) {
      const url = new URL(request.url);
      if (url.pathname.endsWith("/__estateflow/modes")) {
        const refused = authorised(request, env);
        if (refused) return refused;
        return admin(request, request.method === "POST" ? await request.json() : {});
      }
      lostBefore = modes.lost;
      const response = await worker.fetch(request, env, ctx);
      return modes.lost > lostBefore ? lostAnswer() : response;
    },
  };
}
