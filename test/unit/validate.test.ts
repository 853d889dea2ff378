import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, FLOAT32_MAX, fastPath, validateBySchema, validateReading } from '../../agent/ingest/validate.js';

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
  { ...ok, ts: '2026-04-31T12:00+01:00' },
  { ...ok, ts: '2026-11-22T24:00:00.000+0100' },
  { ...ok, ts: '2026-11-22T23:00:00.000-0100' },
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
  { ...ok, values: { a: FLOAT32_MAX, b: -FLOAT32_MAX } },
  { ...ok, values: { a: 3.4028235e38 } },
  { ...ok, values: { a: -1e39 } },
  { ...ok, values: { a: true } },
  { ...ok, values: { a: {} } },
  { ...ok, values: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`v${i}`, i])) },
  { ...ok, values: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`v${i}`, i])) },
  JSON.parse('{"pumpId":"p","ts":1795435200000,"values":{"__proto__":1}}'),
  JSON.parse('{"pumpId":"p","ts":1795435200000,"values":{"__proto__":1,"a":2}}'),
  { ...ok, values: { ['k'.repeat(128)]: 1 } },
  { ...ok, values: { constructor: 1, toString: 2 } },
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

  it('names every unknown and every missing field of a reading at once, not one per try', () => {
    const wrongNames = { pump: 'pump-1', time: NOW, data: { Pressure: 1 } };
    const expected = 'unknown fields "pump", "time", "data"; missing pumpId, ts, values (a reading is {pumpId, ts, values})';
    expect(validateReading(wrongNames, NOW)).toEqual({ ok: false, error: expected });
    expect(validateReading(JSON.parse(JSON.stringify(wrongNames)) as unknown, NOW)).toEqual({ ok: false, error: expected });
    expect(validateReading({ pumpId: 'pump-1', time: NOW, values: ok.values }, NOW)).toEqual({ ok: false, error: 'unknown field "time"; missing ts (a reading is {pumpId, ts, values})' });
    expect(validateReading({ ...ok, x: 1, y: 2 }, NOW)).toEqual({ ok: false, error: 'unknown fields "x", "y" (a reading is {pumpId, ts, values})' });
    expect(validateReading({ values: ok.values }, NOW)).toEqual({ ok: false, error: 'missing pumpId, ts (a reading is {pumpId, ts, values})' });
    // A single problem keeps its own wording.
    expect(validateReading({ ts: NOW, values: ok.values }, NOW)).toEqual({ ok: false, error: 'pumpId: is required' });
  });

  it('names the field and the problem of a refused reading', () => {
    expect(validateReading({ ...ok, values: { Pressure: 'NaN' } }, NOW)).toEqual({ ok: false, error: 'values.Pressure: expected a finite number or null, got string "NaN"' });
    expect(validateReading({ ...ok, extra: 1 }, NOW)).toEqual({ ok: false, error: 'unknown field "extra"' });
    expect(validateReading({ ...ok, pumpId: 'site1.pump3' }, NOW)).toMatchObject({ ok: false, error: expect.stringMatching(/^pumpId: must be .*no "\.", which IoT Hub refuses in the twin key models\.<pumpId>/) });
    expect(validateReading({ ...ok, ts: NOW + 0.5 }, NOW)).toMatchObject({ ok: false, error: expect.stringMatching(/^ts: epoch milliseconds must be an integer/) });
  });

  it('refuses a value named __proto__ with its reason instead of accepting the reading without it', () => {
    // JSON.parse keeps the key; the schema's copy of the values dropped it, and the reading was stored without that value.
    for (const text of ['{"Pressure":1.5,"__proto__":2}', '{"__proto__":null}', '{"Pressure":1.5,"__proto__":{"Flow":3}}']) {
      const input = { pumpId: 'pump-1', ts: NOW, values: JSON.parse(text) as unknown };
      expect(fastPath(input, NOW, DEFAULT_LIMITS), text).toBeNull();
      expect(validateReading(input, NOW), text).toEqual({ ok: false, error: 'values: the value name "__proto__" is reserved: a JavaScript object cannot hold a value by that name' });
    }
  });

  it('says a value name is too long or empty, rather than that the values are no object', () => {
    const long = 'L'.repeat(130);
    expect(validateReading({ ...ok, values: { Pressure: 1, [long]: 2 } }, NOW)).toEqual({
      ok: false,
      error: `values: the value name "${'L'.repeat(40)}…" is 130 characters long, at most 128 allowed`,
    });
    expect(validateReading({ ...ok, values: { '': 2 } }, NOW)).toEqual({ ok: false, error: 'values: the value name "" is empty' });
    // 65 emoji are 130 UTF-16 code units, the unit of the limit: said as such, not as 130 characters.
    const emoji = '\u{1F6B0}'.repeat(65);
    expect(validateReading({ ...ok, values: { [emoji]: 2 } }, NOW)).toMatchObject({ ok: false, error: expect.stringMatching(/ is 130 UTF-16 code units \(65 characters\) long, at most 128 allowed$/) });
    // The longest name, and names of Object.prototype, are values like any other.
    expect(validateReading({ ...ok, values: { ['L'.repeat(128)]: 1 } }, NOW)).toMatchObject({ ok: true, reading: { values: { ['L'.repeat(128)]: 1 } } });
    expect(validateBySchema({ ...ok, values: { constructor: 1, toString: 2 } }, NOW)).toEqual({ ok: true, reading: { pumpId: 'pump-1', ts: NOW, values: { constructor: 1, toString: 2 } } });
  });

  it('refuses a value name holding a control, bidirectional or zero-width character, naming the code point and its position, and takes names in any script', () => {
    // Accepted before 2026-12-08: `Pressure\u202e` shows as `Pressure` and is another feature; an override turns what follows around on screen.
    const refused: Array<[string, string, string]> = [
      ['Flow\u202eetar', 'U+202E at character 5', '"Flow\\u202eetar"'],
      ['Pres\u200Bsure', 'U+200B at character 5', '"Pres\\u200bsure"'],
      ['\u200EFlow', 'U+200E at character 1', '"\\u200eFlow"'],
      ['\u200FFlow', 'U+200F at character 1', '"\\u200fFlow"'],
      ['Flow\u2066x\u2069', 'U+2066 at character 5', '"Flow\\u2066x\\u2069"'],
      ['\uFEFFCurrent', 'U+FEFF at character 1', '"\\ufeffCurrent"'],
      ['Cur\u00ADrent', 'U+00AD at character 4', '"Cur\\u00adrent"'],
      ['Flow\u2028', 'U+2028 at character 5', '"Flow\\u2028"'],
      ['Bell\u0007', 'U+0007 at character 5', '"Bell\\u0007"'],
      ['\u{1F6B0}\u200D', 'U+200D at character 2', '"\u{1F6B0}\\u200d"'],
      ['tag\u{E0041}', 'U+E0041 at character 4', '"tag\\u{e0041}"'],
      // Blank letters and a lone surrogate (the security re-check): a name of U+115F alone looked empty, and UTF-8 cannot carry U+D800.
      ['\u115F', 'U+115F at character 1', '"\\u115f"'],
      ['Flow\u3164', 'U+3164 at character 5', '"Flow\\u3164"'],
      ['\u2800Flow', 'U+2800 at character 1', '"\\u2800Flow"'],
      ['Flow\uD800', 'U+D800 at character 5', '"Flow\\ud800"'],
    ];
    for (const [name, where, quoted] of refused) {
      const input = { ...ok, values: { Pressure: 1, [name]: 2 } };
      expect(fastPath(input, NOW, DEFAULT_LIMITS), quoted).toBeNull();
      expect(validateReading(input, NOW), quoted).toEqual({
        ok: false,
        error: `values: the value name ${quoted} has an invisible or control character (${where}): control, bidirectional, zero-width and blank characters are refused in a name, which must show as it is matched`,
      });
    }
    for (const name of ['Druck_2', 'давление', 'ضغط المضخة', '圧力', 'Flow rate (m³/h)', '\u{1F6B0}', 'Temp °C']) {
      expect(validateReading({ ...ok, values: { [name]: 1 } }, NOW), name).toMatchObject({ ok: true, reading: { values: { [name]: 1 } } });
    }
  });

  it('refuses an impossible calendar date or hour in every accepted form instead of moving it to another day', () => {
    const wide = { ...DEFAULT_LIMITS, maxPastMs: 5 * 365 * 86_400_000 };
    const refused: Array<[string, string]> = [
      ['2026-02-30T10:00:00Z', '2026-02 has no day 30'],
      ['2026-02-29T10:00:00.000Z', '2026-02 has no day 29'],
      ['2026-04-31T10:00Z', '2026-04 has no day 31'],
      ['2026-06-31T10:00:00.123456+02:00', '2026-06 has no day 31'],
      ['2026-09-31T10:00:00-0530', '2026-09 has no day 31'],
      ['2026-11-22T24:00:00Z', 'hour 24 is not accepted (write 00:00 of the next day)'],
      ['2026-11-22T24:00+01:00', 'hour 24 is not accepted (write 00:00 of the next day)'],
    ];
    for (const [ts, why] of refused) {
      expect(fastPath({ ...ok, ts }, NOW, wide), ts).toBeNull();
      expect(validateReading({ ...ok, ts }, NOW, wide)).toEqual({ ok: false, error: `ts: string "${ts}" is not a real date-time: ${why}` });
    }
    // The same forms on real days and hours: read as that instant, on the fast path and by the schema.
    const accepted: Array<[string, number]> = [
      ['2024-02-29T10:00:00Z', Date.UTC(2024, 1, 29, 10)],
      ['2026-02-28T23:59:59.999Z', Date.UTC(2026, 1, 28, 23, 59, 59, 999)],
      ['2026-04-30T10:00Z', Date.UTC(2026, 3, 30, 10)],
      ['2026-06-30T23:30:00.123456+02:00', Date.UTC(2026, 5, 30, 21, 30, 0, 123)],
      ['2026-09-30T23:00:00-0530', Date.UTC(2026, 9, 1, 4, 30)],
      ['2026-11-23T00:00+01:00', Date.UTC(2026, 10, 22, 23)],
    ];
    for (const [ts, ms] of accepted) {
      expect(fastPath({ ...ok, ts }, NOW, wide)?.ts, ts).toBe(ms);
      expect(validateBySchema({ ...ok, ts }, NOW, wide), ts).toMatchObject({ ok: true, reading: { ts: ms } });
    }
  });

  it('refuses a value beyond the float32 range the models take, naming the feature, the pump and the value', () => {
    for (const v of [3.4028235e38, 1e39, -1e39]) {
      const input = { ...ok, values: { Pressure: 1.5, Flow: v } };
      expect(fastPath(input, NOW, DEFAULT_LIMITS)).toBeNull();
      expect(validateReading(input, NOW)).toEqual({
        ok: false,
        error: `values.Flow: ${v} (pump "pump-1") is beyond the float32 range the models take (magnitude at most 3.4028234663852886e+38)`,
      });
    }
    // The largest float32 itself, and large values it holds (an overflow inside a model is another matter).
    for (const v of [FLOAT32_MAX, -FLOAT32_MAX, 1e20]) expect(validateReading({ ...ok, values: { Flow: v } }, NOW).ok).toBe(true);
  });

  it('refuses a ts too far from the gateway clock naming the setting that bounds it, as the environment and the twin call it', () => {
    const ahead = validateReading({ ...ok, ts: NOW + 2 * 86_400_000 }, NOW);
    expect(ahead).toEqual({ ok: false, error: 'ts: 2026-11-25T12:00:00.000Z is more than 86400 s (PUMPWATCH_MAX_FUTURE_SECONDS, twin ingest.maxFutureSeconds) ahead of the gateway clock (2026-11-23T12:00:00.000Z)' });
    const behind = validateReading({ ...ok, ts: NOW - 2 * 3600_000 }, NOW, { ...DEFAULT_LIMITS, maxPastMs: 3600_000 });
    expect(behind).toEqual({ ok: false, error: 'ts: 2026-11-23T10:00:00.000Z is more than 3600 s (PUMPWATCH_MAX_PAST_SECONDS, twin ingest.maxPastSeconds) behind the gateway clock (2026-11-23T12:00:00.000Z)' });
  });

  it('refuses a ts beyond what a Date holds with its number and the likely unit, where its wording threw', () => {
    // Past the year 275760, new Date(ts).toISOString() throws: the refusal of one such reading was a 500 for its whole batch.
    for (const ts of [1e20, 8_640_000_000_000_001, Number.MAX_SAFE_INTEGER]) {
      expect(validateReading({ ...ok, ts }, NOW)).toEqual({
        ok: false,
        error: `ts: ${ts} is more than 86400 s (PUMPWATCH_MAX_FUTURE_SECONDS, twin ingest.maxFutureSeconds) ahead of the gateway clock (2026-11-23T12:00:00.000Z) (epoch milliseconds are expected: is it in microseconds?)`,
      });
    }
    expect(validateReading({ ...ok, ts: -1e20 }, NOW)).toEqual({ ok: false, error: expect.stringMatching(/^ts: -100000000000000000000 is more than .* behind the gateway clock/) });
    // Seconds sent as milliseconds: named too.
    expect(validateReading({ ...ok, ts: Math.floor(NOW / 1000) }, NOW)).toEqual({ ok: false, error: expect.stringMatching(/behind the gateway clock .*\(epoch milliseconds are expected: is it in seconds\?\)$/) });
  });
});
