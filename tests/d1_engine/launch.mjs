// Starts the local D1 engine (worker.mjs in Miniflare) on 127.0.0.1 and a free port, and prints one
// line of JSON: {"base_url": "http://127.0.0.1:PORT/client/v4", "account_id": ..., "databases": [...]}.
// Point CLOUDFLARE_API_BASE_URL at base_url and the D1 target talks to it as to Cloudflare.
//
//   D1_ENGINE_TOKEN=secret node launch.mjs --account ACCOUNT --database DB1 [--database DB2] [--persist DIR]
//                                          [--rate-limit 1200/300 | --rate-limit off]
//
// The bearer token the engine accepts comes from D1_ENGINE_TOKEN (never from the command line, where
// `ps` would show it). Databases live in memory unless --persist names a folder. The engine stops on
// SIGTERM or SIGINT, and when its standard input closes (so it never outlives the process that
// started it with a pipe). --rate-limit is the API's budget of requests per window of seconds
// (default Cloudflare's 1,200 per 300); see service.mjs.
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";

const { values } = parseArgs({
  options: {
    account: { type: "string", default: "0123456789abcdef0123456789abcdef" },
    database: { type: "string", multiple: true },
    persist: { type: "string" },
    port: { type: "string", default: "0" },
    "rate-limit": { type: "string", default: "1200/300" },
  },
});
const token = process.env.D1_ENGINE_TOKEN;
if (!token) {
  console.error("launch.mjs: set D1_ENGINE_TOKEN to the bearer token the engine should accept");
  process.exit(2);
}
const databases = values.database?.length ? values.database : ["00000000-0000-4000-8000-000000000001"];
const bindings = Object.fromEntries(databases.map((id, i) => [`DB_${i}`, id]));

const mf = new Miniflare({
  modules: true,
  // worker.mjs imports the engine's other modules; Miniflare collects them by following the imports.
  scriptPath: fileURLToPath(new URL("./worker.mjs", import.meta.url)),
  compatibilityDate: "2026-04-01",
  d1Databases: bindings,
  d1Persist: values.persist ?? false,
  bindings: {
    TOKEN: token,
    ACCOUNT_ID: values.account,
    RATE_LIMIT: values["rate-limit"],
    DATABASES: JSON.stringify(Object.fromEntries(databases.map((id, i) => [id, `DB_${i}`]))),
  },
  host: "127.0.0.1",
  port: Number(values.port),
});

let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    process.exit(code);
  }
}
process.on("SIGTERM", () => stop());
process.on("SIGINT", () => stop());
process.stdin.on("end", () => stop());
process.stdin.on("error", () => stop());
process.stdin.resume();

try {
  const url = await mf.ready;
  const base_url = new URL("/client/v4", url).href;
  process.stdout.write(JSON.stringify({ base_url, account_id: values.account, databases }) + "\n");
} catch (error) {
  console.error(`launch.mjs: the engine did not start: ${error?.stack ?? error}`);
  await stop(1);
}
