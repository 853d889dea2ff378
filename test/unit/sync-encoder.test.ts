import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { StoredRow } from '../../buffer/types.js';
import { decodeBatch, encodeRows, lineText, sourceJson, toLine, toRawRow } from '../../sync/encoder.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const row = (seq: number, extra: Partial<StoredRow> = {}): StoredRow => ({
  seq,
  pumpId: 'pump-1',
  ts: T0 + seq * 1000,
  receivedAt: T0 + seq * 1000 + 5,
  values: { Pressure: 0.38, Flow: null },
  score: 0.12,
  anomaly: false,
  modelVersion: 'v1',
  imputed: true,
  unscoredReason: null,
  shadowScore: null,
  shadowModelVersion: null,
  contributions: null,
  ...extra,
});

describe('readings encoder', () => {
  it('writes one JSON line per row with the fields of DESIGN.md, optional ones only when present', () => {
    expect(JSON.stringify(toLine(row(3), 'gw'))).toBe(
      '{"seq":3,"deviceId":"gw","pumpId":"pump-1","ts":"2026-11-23T10:00:03.000Z","receivedAt":"2026-11-23T10:00:03.005Z",' +
        '"values":{"Pressure":0.38,"Flow":null},"score":0.12,"anomaly":false,"modelVersion":"v1","imputed":true}',
    );
    const full = toLine(row(4, { score: null, anomaly: null, unscoredReason: 'no model', shadowScore: 0.5, shadowModelVersion: 'v2', contributions: { Pressure: 1 } }), 'gw');
    expect(full).toMatchObject({ score: null, anomaly: null, unscoredReason: 'no model', shadowScore: 0.5, shadowModelVersion: 'v2', contributions: { Pressure: 1 } });
  });

  it('builds lines from the stored form byte for byte as JSON.stringify of the line object', () => {
    const rows = [
      row(1),
      row(2, { values: { a: -0, b: 1e21, c: 5e-7, d: null, 'odd "name"': 0.1 + 0.2 }, score: -1.5e-300, anomaly: true }),
      row(3, { modelVersion: null, score: null, anomaly: null, unscoredReason: 'no "value" for Flow ✓\n', imputed: false }),
      row(4, { shadowScore: 0, shadowModelVersion: 'v2 "β"', contributions: { Pressure: 0.5, Flow: -2 } }),
      row(5, { ts: Date.UTC(1999, 0, 1), receivedAt: 0 }),
    ];
    for (const r of rows) expect(lineText(toRawRow(r), JSON.stringify('gw "x"'))).toBe(JSON.stringify(toLine(r, 'gw "x"')));
    for (const r of rows) expect(lineText(toRawRow(r), sourceJson('gw "x"', '0a1b2c3d4e5f6789'))).toBe(JSON.stringify(toLine(r, 'gw "x"', '0a1b2c3d4e5f6789')));
    expect(Object.keys(toLine(rows[0]!, 'gw', '0a1b2c3d4e5f6789')).slice(0, 4)).toEqual(['seq', 'deviceId', 'bufferId', 'pumpId']);
  });

  it('encodes the same rows to the same bytes every time, gzip without a timestamp, with the hashes of both forms', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => row(i + 1));
    const a = await encodeRows(rows, 'gw');
    const b = await encodeRows(rows.map((r) => ({ ...r, values: { ...r.values } })), 'gw');
    expect(a.body.equals(b.body)).toBe(true);
    expect(a.body.readUInt32LE(4)).toBe(0); // MTIME
    expect(a.sha256).toBe(createHash('sha256').update(a.body).digest('hex'));
    expect(a.rawSha256).toBe(createHash('sha256').update(gunzipSync(a.body)).digest('hex'));
    expect(a).toMatchObject({ rowCount: 2000, rawBytes: gunzipSync(a.body).length });
    expect((await encodeRows(rows, 'gw-2')).sha256).not.toBe(a.sha256);
  });

  it('writes the lines as UTF-8 byte for byte, also lines far longer than usual and text outside ASCII', async () => {
    const long = 'ü✓𝄞"\\'.repeat(400); // 2- to 4-byte characters and escapes, longer than a line's usual size
    const rows = [
      row(1),
      row(2, { pumpId: 'Pumpe-Nord-ß', modelVersion: long, unscoredReason: long, score: null, anomaly: null }),
      ...Array.from({ length: 600 }, (_, i) => row(i + 3, { shadowModelVersion: i % 7 === 0 ? long : null })),
      row(700, { contributions: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`sensör ${i}`, i / 3])) }),
    ];
    const e = await encodeRows(rows, 'gw-ñ');
    const expected = rows.map((r) => `${JSON.stringify(toLine(r, 'gw-ñ'))}\n`).join('');
    expect(gunzipSync(e.body).equals(Buffer.from(expected, 'utf8'))).toBe(true);
    expect(e.rawBytes).toBe(Buffer.byteLength(expected));
  });

  it('decodes what it encodes, line for line', async () => {
    const rows = [row(1), row(2, { anomaly: true, score: 9 }), row(3, { unscoredReason: 'no value yet for Flow', score: null, anomaly: null })];
    const e = await encodeRows(rows, 'gw');
    expect(await decodeBatch(e.body, 'b')).toEqual(rows.map((r) => toLine(r, 'gw')));
  });

  it('names the blob and line of content it cannot decode', async () => {
    await expect(decodeBatch(Buffer.from('plain'), 'blob x')).rejects.toMatchObject({ code: 'PW_SYNC_BLOB_CORRUPT' });
    const bad = gzipSync(`${JSON.stringify(toLine(row(1), 'gw'))}\n{"seq":"two"}\n`);
    await expect(decodeBatch(bad, 'blob y')).rejects.toThrow('blob y line 2: "seq" is not an integer');
    await expect(decodeBatch(gzipSync('{not json'), 'blob z')).rejects.toThrow('blob z line 1: not valid JSON');
  });

  it('reads lines with fields added since (version 1 is additive) and refuses a line of a version it does not know, naming it', async () => {
    const line = toLine(row(1), 'gw', '0a1b2c3d4e5f6789');
    const added = gzipSync(`${JSON.stringify({ ...line, fieldOfLater: [1, 'x'] })}\n${JSON.stringify({ ...line, seq: 2, schema: 1 })}\n`);
    expect((await decodeBatch(added, 'blob a')).map((l) => l.seq)).toEqual([1, 2]);
    const later = gzipSync(`${JSON.stringify(line)}\n${JSON.stringify({ ...line, seq: 2, schema: 2 })}\n`);
    await expect(decodeBatch(later, 'blob b')).rejects.toMatchObject({ code: 'PW_SYNC_BAD_LINE' });
    await expect(decodeBatch(later, 'blob b')).rejects.toThrow('blob b line 2: "schema" is 2, a line version this reader does not know (it reads 1)');
  });
});
