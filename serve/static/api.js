// The page's only way to the server: the same HTTP API a script uses, with the key (when the
// server has keys) kept in this tab's sessionStorage and sent as a bearer token.

const KEY = "ragstack.key";
const COLLECTION = "ragstack.collection";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const auth = {
  key: () => sessionStorage.getItem(KEY) || "",
  set: (key) => (key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY)),
  onRefused: () => {}, // set by app.js: ask for a key
};

export const collection = {
  name: () => sessionStorage.getItem(COLLECTION) || "default",
  set: (name) => sessionStorage.setItem(COLLECTION, name),
  // document, session, search and job routes of the chosen collection
  base() {
    const name = this.name();
    return name === "default" ? "/v1" : `/v1/collections/${encodeURIComponent(name)}`;
  },
};

export function headers(extra = {}) {
  const key = auth.key();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// The server's words for an error (OpenAI's shape, or FastAPI's detail), else the status.
async function errorMessage(response) {
  try {
    const body = await response.json();
    const message = body?.error?.message ?? body?.detail;
    if (message) return typeof message === "string" ? message : JSON.stringify(message);
  } catch {
    // not JSON: fall through to the status
  }
  return `${response.status} ${response.statusText}`;
}

export function describeStatus(status, message) {
  if (status === 0) return "The server cannot be reached. Is `rag serve` running?";
  if (status === 429 || status === 503) return `The server is busy (${status}); try again in a moment.`;
  if (status >= 500) return `The server failed (${status}): ${message}`;
  return message;
}

// fetch with the key; JSON in and out unless `raw` (then the Response itself).
export async function api(path, { method = "GET", json, body, signal, raw = false } = {}) {
  const init = { method, signal, headers: headers() };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, describeStatus(0));
  }
  if (response.status === 401) {
    auth.onRefused();
    throw new ApiError(401, "This page needs an API key the server accepts.");
  }
  if (!response.ok) {
    const message = await errorMessage(response);
    throw new ApiError(response.status, describeStatus(response.status, message));
  }
  return raw ? response : response.json();
}

// An object URL of an authorised GET (an <img src> cannot send the key).
export async function blobUrl(path) {
  const response = await api(path, { raw: true });
  return { url: URL.createObjectURL(await response.blob()), response };
}

export const enc = encodeURIComponent;
