// D1's export API as its REST schema and wrangler's `d1 export` use it:
//
//   POST .../export {"output_format": "polling"}               starts an export: {at_bookmark, ...}
//   POST .../export {"output_format": "polling", "current_bookmark": B}   polls it
//
// until `status` is "complete" with `result: {filename, signed_url}` (or "error" with `error`). The
// dump is D1's own (timetravel.mjs's snapshot of the state at `at_bookmark`, which "will not change for
// the duration of the export task"). `settings.export.polls` is how many polls answer "not yet".
//
// The signed URL is pre-signed, as R2's are: it is fetched without credentials, and one that comes
// with an Authorization header is refused as S3 refuses it ("Only one auth mechanism allowed").
// Every download is recorded (`observed.downloads`) with whether such a header came along. Valid for
// one hour, as documented.

import { failure, ok } from "./envelope.mjs";
import { observed, onReset, settings } from "./service.mjs";
import { dumpStatements, snapshot, snapshotStatements } from "./timetravel.mjs";

const tasks = new Map(); // `${database}:${at_bookmark}` -> { polls_left, options }
const files = new Map(); // id -> { text, signature, expires }
onReset(() => {
  tasks.clear();
  files.clear();
});

const SIGNED_PATH = /^\/__signed\/([0-9a-f]{32})$/;

function randomHex(bytes) {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function exportRoute(request, db, database, url) {
  if (!settings.export.available) return failure(404, 7000, "No route for that URI");
  let body;
  try {
    body = await request.json();
  } catch (error) {
    return failure(400, 7400, `The request is malformed: ${error.message}`);
  }
  if (body?.output_format !== "polling") return failure(400, 7400, 'output_format must be "polling"');
  let at = body.current_bookmark;
  if (at === undefined) {
    at = await snapshot(db, database);
    tasks.set(`${database}:${at}`, { polls_left: settings.export.polls, options: body.dump_options ?? {} });
  }
  const task = tasks.get(`${database}:${at}`);
  if (!task) return failure(400, 7400, `No export in progress at bookmark ${at}`);
  const head = { success: true, type: "export", at_bookmark: at };
  if (settings.export.error) {
    tasks.delete(`${database}:${at}`);
    return ok({ ...head, success: false, status: "error", error: settings.export.error, messages: [] });
  }
  if (task.polls_left > 0) {
    task.polls_left -= 1;
    return ok({ ...head, messages: ["Generating SQL dump"] });
  }
  tasks.delete(`${database}:${at}`);
  const options = task.options;
  const plain = !options.no_data && !options.no_schema && !(options.tables ?? []).length;
  const statements = plain
    ? snapshotStatements(database, at)
    : await dumpStatements(db, { noSchema: options.no_schema, noData: options.no_data, tables: options.tables });
  const id = randomHex(16);
  const signature = randomHex(32);
  files.set(id, { text: statements.join("\n"), signature, expires: Date.now() + 3600_000 });
  const signed_url = `${url.origin}/__signed/${id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=${signature}`;
  return ok({
    ...head,
    status: "complete",
    result: { filename: `${database}-${at}.sql`, signed_url },
    messages: ["Uploaded part 1", "Export complete"],
  });
}

// The download of a signed URL, or null when the path is not one.
export function signedDownload(request, url) {
  const match = SIGNED_PATH.exec(url.pathname);
  if (!match) return null;
  const withAuthorization = request.headers.has("Authorization");
  observed.downloads.push({ authorization: withAuthorization });
  const file = files.get(match[1]);
  if (!file || url.searchParams.get("X-Amz-Signature") !== file.signature || Date.now() > file.expires) {
    return s3Error(403, "AccessDenied", "Request has expired or the signature does not match");
  }
  if (request.method !== "GET") return s3Error(405, "MethodNotAllowed", "GET only");
  if (withAuthorization) {
    return s3Error(
      400,
      "InvalidArgument",
      "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string" +
        " parameter or the Authorization header should be specified",
    );
  }
  return new Response(file.text, { headers: { "Content-Type": "application/sql" } });
}

function s3Error(status, code, message) {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  return new Response(body, { status, headers: { "Content-Type": "application/xml" } });
}
