/**
 * Abuse of the status endpoint from a browser or a misbehaving client, against a real agent over
 * real HTTP: DNS rebinding, cross-site requests, a client that stalls in the middle of its body.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestAgent, type TestAgent } from '../support/agent.js';

let t: TestAgent;
let port: number;

/** A request with headers fetch cannot set (Host), answered as { status, json }. */
function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A live-page stream (GET /events) with these headers, held open until `close` (or refused, with its status). */
function openStream(headers: Record<string, string>): Promise<{ status: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/events', headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode!, close: () => res.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The status and code of an answer, read as soon as its headers arrive (a live stream never ends); the connection is then closed. */
function answer(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; code: string | undefined; error: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      if (!String(res.headers['content-type']).startsWith('application/json') || res.statusCode! < 400) {
        res.destroy();
        return resolve({ status: res.statusCode!, code: undefined, error: undefined });
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, ...(JSON.parse(text) as { code: string; error: string }) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const reading = (pumpId: string) => JSON.stringify({ pumpId, ts: Date.now(), values: { Pressure: 1.4, Flow: 30, Current: 1.4 } });
const pumpIds = async (url: string) => ((await (await fetch(`${url}/pumps`)).json()) as any).pumps.map((p: any) => p.pumpId);

beforeAll(async () => {
  t = await startTestAgent();
  port = Number(new URL(t.url).port);
});
afterAll(async () => {
  await t?.stop();
});

describe('without a status token (loopback only)', () => {
  it('refuses a DNS-rebound name in the Host header, so a web page cannot read or write through a browser on the gateway', async () => {
    for (const [method, path, body] of [['GET', '/status', undefined], ['GET', '/labels', undefined], ['POST', '/readings', reading('rebound-1')]] as const) {
      const res = await send(method, path, { host: `evil.example:${port}`, 'content-type': 'application/json' }, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json.code).toBe('PW_FORBIDDEN');
      expect(res.json.error).toContain('evil.example');
    }
    expect(await pumpIds(t.url)).not.toContain('rebound-1');
    // the page shell and health probes still answer whatever the name
    expect((await send('GET', '/healthz', { host: `evil.example:${port}` })).status).toBe(200);
  });

  it('answers a loopback client that names the gateway by localhost or an IP address', async () => {
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST']) {
      expect((await send('GET', '/status', { host })).status, host).toBe(200);
    }
  });

  it('refuses a cross-site POST (a text/plain "simple" request from another page) and stores nothing', async () => {
    const label = JSON.stringify({ pumpId: 'xsite-1', kind: 'maintenance', from: 0, to: 1000, author: 'mallory' });
    for (const [path, body] of [['/readings', reading('xsite-1')], ['/labels', label]] as const) {
      const res = await send('POST', path, { host: `127.0.0.1:${port}`, origin: 'http://evil.example', 'content-type': 'text/plain' }, body);
      expect(res.status, path).toBe(403);
      expect(res.json).toMatchObject({ code: 'PW_CROSS_ORIGIN' });
      expect(res.json.error).toContain('http://evil.example');
    }
    const nullOrigin = await send('POST', '/readings', { host: `127.0.0.1:${port}`, origin: 'null', 'content-type': 'text/plain' }, reading('xsite-1'));
    expect(nullOrigin.status).toBe(403);
    expect(await pumpIds(t.url)).not.toContain('xsite-1');
    const labels = ((await (await fetch(`${t.url}/labels?pumpId=xsite-1`)).json()) as any).labels;
    expect(labels).toEqual([]);
  });

  it('refuses what a page of another site, or of another port of 127.0.0.1, asks of a data endpoint, GETs too (Sec-Fetch-Site)', async () => {
    // A browser's no-cors GET: the page cannot read the answer, but it would hold a live-page slot or run the query.
    const data: Array<[string, string, string?]> = [
      ['GET', '/status'],
      ['GET', '/events'],
      ['GET', '/alerts?perPump=1000&since=2100-01-01T00:00:00Z'],
      ['GET', '/pumps'],
      ['GET', '/pumps/xsite-3/predictions?since=2100-01-01T00:00:00Z'],
      ['GET', '/metrics'],
      ['GET', '/labels'],
      ['POST', '/readings', reading('xsite-3')],
    ];
    for (const site of ['cross-site', 'same-site']) {
      for (const [method, path, body] of data) {
        const res = await answer(method, path, { 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors', 'content-type': 'text/plain' }, body);
        expect(res, `${site} ${method} ${path}`).toMatchObject({ status: 403, code: 'PW_CROSS_ORIGIN' });
        expect(res.error).toContain(`(Sec-Fetch-Site: ${site}) is refused`);
      }
    }
    expect(await pumpIds(t.url)).not.toContain('xsite-3');
    // Another site's streams hold none of the 20 live-page slots: the page's own 20 still open.
    const foreign = await Promise.all(Array.from({ length: 20 }, () => openStream({ 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' })));
    const own = await Promise.all(Array.from({ length: 20 }, () => openStream({ 'sec-fetch-site': 'same-origin' })));
    for (const st of [...foreign, ...own]) st.close();
    expect(foreign.map((r) => r.status)).toEqual(Array(20).fill(403));
    expect(own.map((r) => r.status)).toEqual(Array(20).fill(200));
    // Health probes and the page's static files answer any site; the page's own requests, a typed URL and curl get the data.
    for (const path of ['/healthz', '/readyz', '/', '/page/app.js', '/favicon.ico']) {
      expect((await answer('GET', path, { 'sec-fetch-site': 'cross-site' })).status, path).toBe(200);
    }
    for (const headers of [{ 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }, {}] as Array<Record<string, string>>) {
      expect((await answer('GET', '/status', headers)).status, JSON.stringify(headers)).toBe(200);
    }
  });

  it('still accepts a POST from the page itself (same origin) and from clients that send no Origin', async () => {
    const own = await send('POST', '/readings', { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}`, 'content-type': 'application/json' }, reading('own-1'));
    expect(own.status).toBe(202);
    const curl = await send('POST', '/readings', { host: `127.0.0.1:${port}`, 'content-type': 'application/json' }, reading('curl-1'));
    expect(curl.status).toBe(202);
    expect(await pumpIds(t.url)).toEqual(expect.arrayContaining(['own-1', 'curl-1']));
  });
});

describe('with a status token', () => {
  let remote: TestAgent;
  beforeAll(async () => {
    remote = await startTestAgent({ PUMPWATCH_STATUS_TOKEN: 'field-token-1' });
  });
  afterAll(async () => {
    await remote?.stop();
  });

  it('answers any host name (the token is what protects it) but still refuses a cross-site POST, and GET', async () => {
    const p = Number(new URL(remote.url).port);
    const auth = { authorization: 'Bearer field-token-1' };
    const get = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port: p, path: '/status', headers: { host: `gateway-7.plant.local:${p}`, ...auth } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
        .on('error', reject)
        .end();
    });
    expect(get).toBe(200);
    const post = await fetch(`${remote.url}/readings`, { method: 'POST', headers: { ...auth, origin: 'http://evil.example', 'content-type': 'text/plain' }, body: reading('xsite-2') });
    expect(post.status).toBe(403);
    expect(JSON.stringify(await post.json())).not.toContain('field-token-1');
    // and a GET a page of another site makes, even were it to carry the token
    const xsiteGet = await fetch(`${remote.url}/status`, { headers: { ...auth, 'sec-fetch-site': 'cross-site' } });
    expect(xsiteGet.status).toBe(403);
    expect(((await xsiteGet.json()) as { code: string }).code).toBe('PW_CROSS_ORIGIN');
  });

  it('closes the connection of a refused request instead of reading its body to the end', async () => {
    // Without a token, a client sends a body of 10 GB: it is refused with 401 at once, and must
    // not get to stream the rest for minutes (the agent would read and discard all of it).
    const p = Number(new URL(remote.url).port);
    const socket = connect(p, '127.0.0.1');
    let sent = 0;
    let answer = '';
    socket.on('data', (d) => (answer += String(d)));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {}); // the reset of a write after the server closed
    socket.write(`POST /readings HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 32);
    const pump = (): void => {
      while (!socket.destroyed && sent < 1e9 && socket.write(chunk)) sent += chunk.length;
    };
    socket.on('drain', pump);
    pump();
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(sent).toBeLessThan(1e9);
  });
});

describe('a client that stalls in the middle of its body', () => {
  it('is cut off with 408 PW_BODY_TIMEOUT and does not hold up the readings of other clients', async () => {
    // A chunked body (length unknown) holds the whole body budget while it is read.
    const stalled = connect(port, '127.0.0.1');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      stalled.on('data', (d) => (text += String(d)));
      stalled.on('close', () => resolve(text));
    });
    stalled.write(`POST /readings HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n[\r\n`);
    await new Promise((r) => setTimeout(r, 200));
    const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: reading('after-stall-1') });
    expect(res.status).toBe(202);
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('PW_BODY_TIMEOUT');
    expect(await pumpIds(t.url)).toContain('after-stall-1');
  });

  it('is cut off with 408 when it drips a byte every few seconds, never pausing 15 s', async () => {
    // Without a pace rule the idle timer restarts at every byte, and the drip holds the whole
    // budget (chunked: unknown length) until the two-minute request timeout.
    const dripping = connect(port, '127.0.0.1');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      dripping.on('data', (d) => (text += String(d)));
      dripping.on('close', () => resolve(text));
    });
    dripping.on('error', () => {});
    dripping.write(`POST /readings HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n[\r\n`);
    const drip = setInterval(() => dripping.destroyed || dripping.write('1\r\n \r\n'), 3000);
    try {
      const started = Date.now();
      const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: reading('after-drip-1') });
      expect(res.status).toBe(202);
      const text = await answer;
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(text).toContain('PW_BODY_TIMEOUT');
      expect(text).toContain('too slowly');
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(await pumpIds(t.url)).toContain('after-drip-1');
    } finally {
      clearInterval(drip);
    }
  }, 60_000);
});
