import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, fastPath, validateBySchema, validateReading } from '../../agent/ingest/validate.js';

const NOW = Date.UTC(2026, 10, 23, 12);
const ok = { pumpId: 'pump-1', ts: NOW, values: { Pressure: 1.5, Flow: null } };

/** Inputs around every rule: the fast path must never accept what the schema refuses. */
const CORPUS: unknown[] = [
  ok,
  { ...ok, ts: new Date(NOW).toISOString() },
  { ...ok, ts: '2026-11-23T12:00:00+01:00' },
  { ...ok, ts: '2026-11-23T12:00Z' },
  { ...ok, ts: '2026-11-23 12:00:00' },
  { ...ok, ts: '2026-02-30T12:00:00Z' },
  { ...ok, ts: NOW + 0.5 },
  { ...ok, ts: NOW + 2 * 86_400_000 },
  { ...ok, ts: NOW - 2 * 365 * 86_400_000 },
  { ...ok, ts: null },
  { ...ok, pumpId: '' },
  { ...ok, pumpId: 'a/b' },
  { ...ok, pumpId: '-x' },
  { ...ok, pumpId: 'site1.pump3' }, // IoT Hub refuses "." in the twin key models.<pumpId>
  { ...ok, pumpId: 'p'.repeat(128) },
  { ...ok, pumpId: 'p'.repeat(129) },
  { ...ok, pumpId: 7 },
  { ...ok, values: {} },
  { ...ok, values: [] },
  { ...ok, values: null },
  { ...ok, values: { '': 1 } },
  { ...ok, values: { ['k'.repeat(129)]: 1 } },
  { ...ok, values: { a: 'NaN' } },
  { ...ok, values: { a: Number.NaN } },
  { ...ok, values: { a: Number.POSITIVE_INFINITY } },
  { ...ok, values: { a: true } },
  { ...ok, values: { a: {} } },
  { ...ok, values: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`v${i}`, i])) },
  { ...ok, values: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`v${i}`, i])) },
  JSON.parse('{"pumpId":"p","ts":1795435200000,"values":{"__proto__":1}}'),
  { ...ok, extra: 1 },
  { pumpId: 'p', ts: NOW },
  [ok],
  null,
  'text',
  42,
  Object.assign(Object.create({ inherited: 1 }), ok),
];

describe('reading validation', () => {
  it('accepts on the fast path only what the zod schema accepts, with the same reading', () => {
    for (const input of CORPUS) {
      const fast = fastPath(input, NOW, DEFAULT_LIMITS);
      const schema = validateBySchema(input, NOW, DEFAULT_LIMITS);
      if (fast !== null) {
        expect(schema, JSON.stringify(input)).toEqual({ ok: true, reading: fast });
      }
      expect(validateReading(input, NOW).ok, JSON.stringify(input)).toBe(schema.ok);
    }
  });

  it('takes the fast path for ordinary readings', () => {
    expect(fastPath(ok, NOW, DEFAULT_LIMITS)).toEqual({ pumpId: 'pump-1', ts: NOW, values: ok.values });
    expect(fastPath({ ...ok, ts: new Date(NOW).toISOString() }, NOW, DEFAULT_LIMITS)?.ts).toBe(NOW);
  });

  it('names the field and the problem of a refused reading', () => {
    expect(validateReading({ ...ok, values: { Pressure: 'NaN' } }, NOW)).toEqual({ ok: false, error: 'values.Pressure: expected a finite number or null, got string "NaN"' });
    expect(validateReading({ ...ok, extra: 1 }, NOW)).toEqual({ ok: false, error: 'unknown field "extra"' });
    expect(validateReading({ ...ok, pumpId: 'site1.pump3' }, NOW)).toMatchObject({ ok: false, error: expect.stringMatching(/^pumpId: must be .*no "\.", which IoT Hub refuses in the twin key models\.<pumpId>/) });
    expect(validateReading({ ...ok, ts: NOW + 0.5 }, NOW)).toMatchObject({ ok: false, error: expect.stringMatching(/^ts: epoch milliseconds must be an integer/) });
  });
});
