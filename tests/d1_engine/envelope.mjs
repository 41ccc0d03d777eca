// Cloudflare's API envelope, shared by the engine's modules: {success, errors: [{code, message}], messages, result}.

export function reply(status, body, headers = {}) {
  return Response.json(body, { status, headers });
}

export function ok(result) {
  return reply(200, { success: true, errors: [], messages: [], result });
}

export function failure(status, code, message, extra = {}, headers = {}) {
  const body = { success: false, errors: [{ code, message, ...extra }], messages: [], result: null };
  return reply(status, body, headers);
}
