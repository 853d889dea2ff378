/**
 * The one redactor (sync/redact.ts), shared by the agent and the trainer: every form a secret
 * reaches a message in (HTML-escaped and percent-encoded URLs, JSON, SharedKey and Bearer
 * authorization values), and what it must leave readable.
 */
import { describe, expect, it } from 'vitest';
import { redactSecrets, safeErrorMessage, safeStackFrames } from '../../sync/redact.js';

/** [what, text]: each text holds one or more secrets, all spelled with LEAK. */
const SECRETS: Array<[string, string]> = [
  ['a SAS URL', 'https://a.blob.core.windows.net/c/b.gz?sv=2021-08-06&sr=c&sp=racwl&sig=LEAKSIG%2Bx%3D&se=2026-01-01T00%3A00%3A00Z'],
  ['the signature first in the query', 'https://a/c?sig=LEAKFIRST&sv=1'],
  ['a proxy page echoing the URL HTML-escaped', '<html><body>Access denied by proxy for http://h/c/b.gz?sv=2021&amp;sr=c&amp;sp=racwl&amp;sig=LEAKAMP&amp;timeout=300</body></html>'],
  ['a percent-encoded URL', 'https://h/c%3Fsv%3D1%26sig%3DLEAKPCT%26se%3D2026'],
  ['a URL encoded twice', 'u=https%253A%252F%252Fh%252Fc%253Fsv%253D1%2526sig%253DLEAK2X%2526se%253D1'],
  ['the encoded signature first in the query', 'https://h/c%3Fsig%3DLEAKPCTFIRST'],
  ['after a semicolon', 'x;sig=LEAKSEMI'],
  ['at the start of the text', 'sig=LEAKSTART&sv=1'],
  ['at the start of a line', 'Bad request\nsig=LEAKLINE'],
  ['JSON-escaped', String.raw`{"url":"https://h/c?sv=1\u0026sig=LEAKJSONESC"}`],
  ['a SAS connection string', 'BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2020&ss=b&sig=LEAKCS%2B%3D;'],
  ['an account key', 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=LEAKKEY+/==;EndpointSuffix=core.windows.net'],
  ['an account key with spaces', 'AccountKey = LEAKSPACED'],
  ['an account key in JSON', '{"AccountKey":"LEAKJSONKEY"}'],
  ['an account key in JSON with spaces', '{ "accountKey" : "LEAKJSONKEY2" }'],
  ['an account key in YAML', 'accountKey: LEAKYAML'],
  ['a hub shared access key', 'HostName=h.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=LEAKHUB=;DeviceId=d'],
  ['a SharedAccessSignature token', 'SharedAccessSignature sr=h%2Fdevices%2Fd&sig=LEAKSAT%3D&se=1700000000'],
  ['a SharedKey authorization', 'authorization=SharedKey devstoreaccount1:LEAKHMAC+/abc='],
  ['a SharedKeyLite authorization', 'Authorization: SharedKeyLite acct:LEAKLITE='],
  ['a Bearer token', 'Authorization: Bearer LEAKBEARER.eyJ-_x'],
];

describe('redactSecrets', () => {
  it.each(SECRETS)('removes the secret of %s', (_what, text) => {
    const out = redactSecrets(text);
    expect(out).not.toContain('LEAK');
    expect(out).toContain('[redacted]');
  });

  it('keeps what says what went wrong: host, path, resource, SharedKey account, words around', () => {
    const out = redactSecrets('Access denied by proxy for http://h:1/devstoreaccount1/pumpwatch/b.gz?sv=1&amp;sr=c&amp;sig=LEAK&amp;timeout=300');
    expect(out).toBe('Access denied by proxy for http://h:1/devstoreaccount1/pumpwatch/b.gz?sv=[redacted]&amp;sr=c&amp;sig=[redacted]&amp;timeout=300');
    expect(redactSecrets('auth=SharedKey devstoreaccount1:LEAK= next')).toBe('auth=SharedKey devstoreaccount1:[redacted] next');
    for (const plain of ['Signature did not match for sr=c', 'the signature is wrong', 'Bad request\nCannot GET /c?comp=list&restype=container']) {
      expect(redactSecrets(plain)).toBe(plain);
    }
  });

  it('gives the same text when run twice, and leaves a JSON line parseable', () => {
    for (const [, text] of SECRETS) expect(redactSecrets(redactSecrets(text))).toBe(redactSecrets(text));
    const line = JSON.stringify({ msg: SECRETS.map(([, t]) => t).join('\n'), sig: { nested: true }, token: 12, headers: { authorization: 'Bearer LEAKH' } });
    const parsed = JSON.parse(redactSecrets(line)) as Record<string, unknown>;
    expect(JSON.stringify(parsed)).not.toContain('LEAK');
    expect(parsed).toMatchObject({ sig: { nested: true }, token: 12 });
  });

  it('redacts the message of an error, and of anything thrown', () => {
    expect(safeErrorMessage(new Error('denied for /c?sv=1&amp;sig=LEAK'))).toBe('denied for /c?sv=[redacted]&amp;sig=[redacted]');
    expect(safeErrorMessage('AccountKey=LEAK')).toBe('AccountKey=[redacted]');
  });
});

describe('safeStackFrames', () => {
  it('keeps only the call frames of a stack whose message runs over several lines', () => {
    const err = new Error('Bad request\nCannot GET /c?sv=1&sig=LEAKMULTI\nauthorization=SharedKey devstoreaccount1:LEAKMULTIKEY=\n');
    const frames = safeStackFrames(err);
    expect(frames).not.toContain('LEAK');
    expect(frames).toMatch(/^\n\s+at /);
    expect(frames.split('\n').slice(1).every((l) => /^\s+at /.test(l))).toBe(true);
    expect(safeStackFrames('a string')).toBe('');
  });
});
