// The admin API client. The admin token lives in this module's variable
// only: never in storage, a cookie or a URL. Signing out (or reloading the
// tab) forgets it.

let token = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function signIn(t) {
  token = t;
}

export function signOut() {
  token = null;
}

export function signedIn() {
  return token !== null;
}

/** Calls `/v1/admin/control/<path>` with the token; resolves to the JSON body. */
export async function call(method, path, {query, body} = {}) {
  if (token === null) throw new ApiError(401, 'signed_out', 'You are signed out.');
  const url = new URL(`/v1/admin/control/${path}`, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== null && v !== undefined && v !== '') url.searchParams.set(k, String(v));
  }
  const headers = {'X-Admin-Token': token, Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiError(0, 'network_error', `The server could not be reached (${e.message}).`);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.error) || `http_${res.status}`,
      (data && data.message) || res.statusText || `HTTP ${res.status}`);
  }
  return data;
}

export const get = (path, query) => call('GET', path, {query});
export const post = (path, body) => call('POST', path, {body: body || {}});
