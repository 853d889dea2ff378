/**
 * The agent's logger writes no secret, wherever it is in what is logged: secret-named fields at
 * any depth, child bindings, strings of any field, errors under any key, the message itself.
 */
import { RestError } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';

const CS = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=LEAKACCOUNTKEY==;EndpointSuffix=core.windows.net';
const SAS = 'https://a.blob.core.windows.net/c?sv=2021-08-06&sr=c&sp=racwl&sig=LEAKSIG';
const PROXY_PAGE = `<html><body>Access denied by proxy for ${SAS.replace(/&/g, '&amp;')}</body></html>`;

function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger('debug', { write: (line: string) => void lines.push(line) }) };
}

describe('agent logger redaction', () => {
  it('censors secret-named fields at the top, deeper down, in request headers and in child bindings', () => {
    const { lines, logger } = capture();
    logger.info({ connectionString: CS }, 'top-level connectionString');
    logger.info({ sasUrl: SAS, token: 'LEAKTOKEN', authorization: 'Bearer LEAKBEARER' }, 'top-level fields');
    logger.info({ a: { b: { connectionString: CS } } }, 'depth 2');
    logger.info({ a: { b: { c: { d: { password: 'LEAKPASSWORD' } } } } }, 'depth 4');
    logger.info({ req: { headers: { authorization: 'Bearer LEAKREQ' } } }, 'request headers');
    logger.child({ connectionString: CS }).info('child bindings');
    logger.child({ component: 'sync' }).child({ target: SAS }).warn({ attempt: 2 }, 'grandchild bindings');
    expect(lines).toHaveLength(7);
    for (const line of lines) {
      expect(line).not.toContain('LEAK');
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(JSON.parse(lines[0]!)).toMatchObject({ connectionString: '[redacted]', msg: 'top-level connectionString' });
    expect(JSON.parse(lines[4]!)).toMatchObject({ req: { headers: { authorization: '[redacted]' } } });
    expect(JSON.parse(lines[6]!)).toMatchObject({ component: 'sync', attempt: 2, msg: 'grandchild bindings' });
  });

  it('redacts secrets inside any string field, an HTML-escaped or percent-encoded URL and a SharedKey header', () => {
    const { lines, logger } = capture();
    logger.info({ url: SAS, reason: `failed ${SAS}` }, 'plain fields');
    logger.warn({ err: { message: `Blob Storage answered 500. ${PROXY_PAGE}` } }, 'sync failed');
    logger.info({ headers: { 'x-ms-copy-source': SAS.replace('?', '%3F').replace(/&/g, '%26').replace(/=/g, '%3D'), auth: 'SharedKey devstoreaccount1:LEAKHMAC=' } }, 'headers');
    logger.info({ list: [{ url: new URL(SAS) }, `second ${CS}`] }, 'array and URL object');
    logger.info('message %s', SAS);
    logger.info(`template ${CS}`);
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line).not.toContain('LEAK');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, any>);
    expect(parsed[0]!.url).toBe('https://a.blob.core.windows.net/c?sv=[redacted]&sr=c&sp=[redacted]&sig=[redacted]');
    expect(parsed[1]!.err.message).toContain('Access denied by proxy for https://a.blob.core.windows.net/c?sv=[redacted]&amp;sr=c');
  });

  it('writes an error under any key as type, code and redacted message, and redacts a message taken from an error', () => {
    const { lines, logger } = capture();
    const rest = new RestError(`Bad request\nCannot GET /c?sv=1&amp;sig=LEAKREST\nauthorization=SharedKey devstoreaccount1:LEAKRESTKEY=`, { statusCode: 403, code: 'AuthenticationFailed' });
    logger.error({ err: rest }, 'RestError under err');
    logger.error({ error: rest, cause: new Error('x', { cause: rest }) }, 'RestError under other keys');
    logger.error(rest);
    logger.error({ err: rest });
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line).not.toContain('LEAK');
    const [first, second, third, fourth] = lines.map((l) => JSON.parse(l) as Record<string, any>);
    expect(first!.err).toMatchObject({ type: 'RestError', code: 'AuthenticationFailed', statusCode: 403 });
    expect(first!.err.message).toContain('Cannot GET /c?sv=[redacted]&amp;sig=[redacted]');
    expect(second!.error).toMatchObject({ type: 'RestError', code: 'AuthenticationFailed' });
    expect(second!.cause).toMatchObject({ type: 'Error', message: 'x' });
    expect(third!.msg).toMatch(/^Bad request/);
    expect(fourth!.msg).toMatch(/^Bad request/);
    expect(JSON.stringify([first, second, third, fourth])).not.toMatch(/"stack"/);
  });

  it('leaves the logged object as it was, logs what holds no secret as given, and stays bounded on huge or deep objects', () => {
    const { lines, logger } = capture();
    const fields = { blob: 'readings/pump-a/2026/01/01/gw/1-2.jsonl.gz', rows: 3, nested: { sasUrl: SAS, ok: true } };
    const before = JSON.stringify(fields);
    logger.info(fields, 'uploaded');
    expect(JSON.stringify(fields)).toBe(before);
    expect(JSON.parse(lines[0]!)).toMatchObject({ blob: fields.blob, rows: 3, nested: { sasUrl: '[redacted]', ok: true } });

    const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, `v${i} ${SAS}`]));
    let deep: Record<string, unknown> = { url: SAS };
    for (let i = 0; i < 50; i++) deep = { deeper: deep };
    logger.info({ wide, deep }, 'big');
    expect(lines[1]).not.toContain('LEAK');
    expect(() => JSON.parse(lines[1]!)).not.toThrow();
  });
});
