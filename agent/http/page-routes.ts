import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { HttpError } from './errors.js';
import type { LiveEvents } from './live-events.js';
import type { PumpBoard } from './pump-board.js';
import type { StatusServer } from './server.js';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

/** Everything the page loads comes from the agent itself: no CDN, no internet on site. (`nosniff`: the status server's, on every answer.) */
const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** uPlot (the chart library), served from the installed package rather than copied into the repo. */
const VENDOR: Record<string, string> = {
  'uplot.js': 'uPlot.iife.min.js',
  'uplot.css': 'uPlot.min.css',
};

const PAGE_FILE = /^[a-z0-9][a-z0-9-]*\.(js|css|svg)$/;

export function pageDir(): string {
  return join(packageRoot(), 'agent', 'page');
}

async function serveFile(path: string, ext: string, cache: string): Promise<{ status: number; body: Buffer; contentType: string; headers: Record<string, string> }> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    throw new HttpError(404, 'PW_NOT_FOUND', `page asset missing: ${path.split('/').slice(-2).join('/')}`);
  }
  return { status: 200, body, contentType: TYPES[ext] ?? 'application/octet-stream', headers: { ...PAGE_HEADERS, 'cache-control': cache } };
}

/** `GET /` (the technician's page) and its assets (public), `GET /pumps` and `GET /events` (token). */
export function registerPageRoutes(server: StatusServer, deps: { board: PumpBoard; events: LiveEvents }): void {
  server.route('GET', '/', () => serveFile(join(pageDir(), 'index.html'), 'html', 'no-cache'), { public: true });
  server.route(
    'GET',
    '/page/:file',
    ({ params }) => {
      const file = params.file!;
      const m = PAGE_FILE.exec(file);
      if (!m) throw new HttpError(404, 'PW_NOT_FOUND', `no such page asset: ${file}`);
      return serveFile(join(pageDir(), file), m[1]!, 'no-cache');
    },
    { public: true },
  );
  server.route(
    'GET',
    '/page/vendor/:file',
    ({ params }) => {
      const dist = VENDOR[params.file!];
      if (!dist) throw new HttpError(404, 'PW_NOT_FOUND', `no such vendor asset: ${params.file}`);
      return serveFile(join(packageRoot(), 'node_modules', 'uplot', 'dist', dist), dist.endsWith('.css') ? 'css' : 'js', 'public, max-age=86400');
    },
    { public: true },
  );
  server.route('GET', '/favicon.ico', () => serveFile(join(pageDir(), 'icon.svg'), 'svg', 'public, max-age=86400'), { public: true });
  server.route('GET', '/pumps', () => ({
    status: 200,
    json: { at: new Date().toISOString(), pumps: deps.board.summaries() },
  }));
  server.route('GET', '/events', deps.events.handler);
}
