// Talking to the agent: the status token (kept in this tab's sessionStorage, sent only in the
// Authorization header, never in a URL), errors a technician can act on, and the live stream.

const TOKEN_KEY = 'pumpwatch.token';

/**
 * An error the page can show as is: `kind` is unreachable | auth | forbidden | server | bad-request;
 * `body`: the agent's JSON answer, when it gave one (a 409 says what stood in the way).
 */
export class ApiError extends Error {
  constructor(kind, message, code = null, body = null) {
    super(message);
    this.kind = kind;
    this.code = code;
    this.body = body;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token is simply not remembered across reloads
  }
}

function headers(extra = {}) {
  const h = { accept: 'application/json', ...extra };
  const token = getToken();
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

export const UNREACHABLE = 'Cannot reach the PumpWatch agent. Check that this device is on the gateway’s network and that the agent is running.';
/** A GET that has not answered by then counts as a failure (a dropped network can hang a request for minutes). */
const GET_TIMEOUT_MS = 8000;
/** The agent sends a `: ping` every 15 s: a stream silent for longer than this is dead. */
const STREAM_SILENCE_MS = 35_000;

/** Turns an HTTP answer into a message a technician understands. */
async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy page, a cut connection): fall back to the status line
  }
  const code = body?.code ?? null;
  if (res.status === 401) {
    return getToken()
      ? new ApiError('auth', 'That status token is wrong. Enter the token configured on this gateway.', code)
      : new ApiError('auth', 'This gateway needs its status token. Enter it to continue.', code);
  }
  if (res.status === 403 && code === 'PW_CROSS_ORIGIN') {
    return new ApiError('forbidden', `The gateway refused a change sent from another page: ${body?.error ?? 'HTTP 403'}`, code);
  }
  if (res.status === 403) {
    // Without a token the agent answers only on the gateway itself, opened by localhost or an IP
    // address (a name could be a DNS-rebinding site's): say which of the two stood in the way.
    const host = location.hostname.replace(/^\[|\]$/g, '');
    const localName = host === 'localhost' || /^[\d.]+$/.test(host) || host.includes(':');
    // This page's own scheme and port (https when the agent serves TLS).
    const local = (name) => `${location.protocol}//${name}:${location.port || (location.protocol === 'https:' ? '443' : '80')}/`;
    return new ApiError(
      'forbidden',
      localName
        ? 'This gateway has no status token set, so it only answers on the gateway itself. Ask an administrator to set PUMPWATCH_STATUS_TOKEN, then sign in with it.'
        : `This gateway has no status token set, so it answers only when this page is opened on the gateway itself as ${local('127.0.0.1')} or ${local('localhost')}, not by the name ${host}. Open it that way, or ask an administrator to set PUMPWATCH_STATUS_TOKEN and sign in with it.`,
      code,
    );
  }
  const detail = typeof body?.error === 'string' ? body.error : `HTTP ${res.status}`;
  if (res.status === 400 || res.status === 404) return new ApiError('bad-request', detail, code, body);
  if (res.status === 507) return new ApiError('server', `The gateway’s disk is full: ${detail}`, code);
  if (res.status === 503) return new ApiError('server', `The agent is not ready: ${detail}`, code);
  return new ApiError('server', `The agent reported a problem (${code ?? res.status}): ${detail}`, code, body);
}

let lastAnswer = 0;
/**
 * When the agent last answered anything (a request, HTTP errors included, or a chunk of the live
 * stream; this device's clock, 0 before the first): on a lossy link one failed request is no sign
 * the agent is gone while others get through.
 */
export const lastAnswerAt = () => lastAnswer;

/** The `code` of the ApiError of a GET that did not answer within its time. */
export const TIMED_OUT = 'PAGE_TIMED_OUT';

/** GET, POST or DELETE JSON; throws an ApiError. `timeoutMs`: how long a GET may take (a long walk of the agent's). */
export async function api(path, { method = 'GET', body, timeoutMs = GET_TIMEOUT_MS } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      // a POST or DELETE is not cut short: the page could not tell whether it was stored
      signal: method === 'GET' && typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(timeoutMs) : undefined,
    });
  } catch (err) {
    // a GET past its time: the agent may be there but slow (a long walk): `code` tells it apart
    throw new ApiError('unreachable', UNREACHABLE, err?.name === 'TimeoutError' ? TIMED_OUT : null);
  }
  if (!res.ok) {
    const err = await errorOf(res);
    lastAnswer = Date.now();
    throw err;
  }
  let answer;
  try {
    answer = await res.json();
  } catch {
    throw new ApiError('unreachable', UNREACHABLE);
  }
  lastAnswer = Date.now();
  return answer;
}

/**
 * Reads `GET /events` (server-sent events) with fetch, so the token goes in a header.
 * Calls onEvent(name, data) per event; resolves when the stream ends, rejects on failure.
 */
export async function stream(onEvent, onOpen, signal) {
  let res;
  try {
    res = await fetch('/events', { headers: headers({ accept: 'text/event-stream' }), cache: 'no-store', signal });
  } catch {
    throw new ApiError('unreachable', UNREACHABLE);
  }
  if (!res.ok || !res.body) throw await errorOf(res);
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let silent = null;
  const watch = () => {
    clearTimeout(silent);
    silent = setTimeout(() => void reader.cancel().catch(() => {}), STREAM_SILENCE_MS);
  };
  for (;;) {
    watch();
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      clearTimeout(silent);
      throw new ApiError('unreachable', UNREACHABLE);
    }
    const { value, done } = chunk;
    lastAnswer = Date.now();
    if (done) {
      clearTimeout(silent);
      return;
    }
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) onEvent(name, JSON.parse(data.join('\n')));
    }
  }
}
