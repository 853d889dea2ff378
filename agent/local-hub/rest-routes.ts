/**
 * The service REST API the azure-iothub Registry calls, on the hub's twins:
 * - GET   /twins/{deviceId}/modules/{moduleId}       → the module twin document
 * - PATCH /twins/{deviceId}/modules/{moduleId}       → merge `tags` and `properties.desired`
 *   (null deletes); `If-Match` (quoted or not) must be `*` or the current etag, else 412
 * - POST  /devices/query  `{ "query": "SELECT * FROM devices.modules WHERE …" }` → twin documents,
 *   paged with `x-ms-max-item-count` / `x-ms-continuation` (see query.ts for the supported subset)
 * Errors use IoT Hub's body shape `{"Message":"ErrorCode:<code>;<text>"}`, which the SDK parses.
 */
import { LocalHubError } from './errors.js';
import { isJsonObject, type JsonObject } from './json.js';
import { compileQuery } from './query.js';
import type { ModuleRecord, TwinStore } from './twin-store.js';

export interface RestRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RestResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface RestDeps {
  store: TwinStore;
  /** Called after a desired change so the module hears about it. */
  desiredChanged(record: ModuleRecord, patch: JsonObject, version: number): void;
}

const DEFAULT_PAGE = 100;

export function errorResponse(status: number, code: string, text: string): RestResponse {
  return { status, body: { Message: `ErrorCode:${code};${text}`, ExceptionMessage: '' } };
}

function header(req: RestRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

export function route(req: RestRequest, deps: RestDeps): RestResponse {
  const url = new URL(req.path, 'https://localhost');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 4 && parts[0] === 'twins' && parts[2] === 'modules') {
      const record = deps.store.find(parts[1] ?? '', parts[3] ?? '');
      if (!record) return errorResponse(404, 'ModuleNotFound', `Module ${parts[1]}/${parts[3]} not found`);
      if (req.method === 'GET') return twinResponse(deps, record);
      if (req.method === 'PATCH') return patchTwin(req, deps, record);
      return errorResponse(405, 'MethodNotAllowed', `${req.method} is not supported on a module twin here`);
    }
    if (parts.length === 2 && parts[0] === 'devices' && parts[1] === 'query' && req.method === 'POST') {
      return runQuery(req, deps);
    }
    return errorResponse(404, 'NotFound', `${req.method} ${url.pathname} is not implemented by the local hub`);
  } catch (err) {
    if (err instanceof LocalHubError && (err.code === 'PW_LOCALHUB_BAD_PATCH' || err.code === 'PW_LOCALHUB_TWIN_TOO_LARGE' || err.code === 'PW_LOCALHUB_BAD_QUERY')) {
      return errorResponse(400, err.code === 'PW_LOCALHUB_BAD_QUERY' ? 'SqlQueryInvalid' : 'ArgumentInvalid', err.message);
    }
    throw err;
  }
}

function twinResponse(deps: RestDeps, record: ModuleRecord): RestResponse {
  const doc = deps.store.document(record);
  return { status: 200, body: doc, headers: { etag: `"${doc.etag}"` } };
}

function patchTwin(req: RestRequest, deps: RestDeps, record: ModuleRecord): RestResponse {
  const ifMatch = header(req, 'if-match')?.replace(/^"(.*)"$/, '$1');
  const current = deps.store.document(record).etag;
  if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== current) {
    return errorResponse(412, 'PreconditionFailed', 'Precondition failed: the twin etag does not match If-Match');
  }
  const patch = parseJson(req.body);
  if (!isJsonObject(patch)) return errorResponse(400, 'ArgumentInvalid', 'the body must be a JSON twin patch');
  const properties = patch['properties'];
  if (properties !== undefined && !isJsonObject(properties)) {
    return errorResponse(400, 'ArgumentInvalid', 'properties must be an object');
  }
  if (properties && properties['reported'] !== undefined) {
    return errorResponse(400, 'ArgumentInvalid', 'reported properties can only be changed by the module');
  }
  if (patch['tags'] !== undefined) deps.store.patchTags(record, patch['tags']);
  const desired = properties?.['desired'];
  if (desired !== undefined) {
    const version = deps.store.patchDesired(record, desired);
    deps.desiredChanged(record, desired as JsonObject, version);
  }
  return twinResponse(deps, record);
}

function runQuery(req: RestRequest, deps: RestDeps): RestResponse {
  const body = parseJson(req.body);
  const text = isJsonObject(body) ? body['query'] : undefined;
  if (typeof text !== 'string') return errorResponse(400, 'ArgumentInvalid', 'the body must be {"query": "<sql>"}');
  const predicate = compileQuery(text);
  const matches = deps.store.all().map((r) => deps.store.document(r)).filter((doc) => predicate(doc));
  const pageSize = Math.max(1, Number(header(req, 'x-ms-max-item-count')) || DEFAULT_PAGE);
  const token = header(req, 'x-ms-continuation');
  const offset = token ? Number(Buffer.from(token, 'base64').toString('utf8')) || 0 : 0;
  const page = matches.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  const headers: Record<string, string> = { 'x-ms-item-type': 'Twin' };
  if (next < matches.length) headers['x-ms-continuation'] = Buffer.from(String(next)).toString('base64');
  return { status: 200, body: page, headers };
}
