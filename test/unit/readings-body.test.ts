import { describe, expect, it } from 'vitest';
import { parseReadingsBody } from '../../agent/http/readings-route.js';

const JSON_TYPE = 'application/json';
const line = (pumpId: string) => JSON.stringify({ pumpId, ts: 1_795_435_200_000, values: { Pressure: 1.4 } });
const parse = (text: string, contentType = JSON_TYPE) => parseReadingsBody(Buffer.from(text), contentType);

describe('parseReadingsBody', () => {
  it('refuses a pretty-printed object with a typo as one body that is not JSON, not as NDJSON fragments', () => {
    const pretty = '{\n  "pumpId": "pump-1"\n  "ts": 1795435200000,\n  "values": {"Pressure": 1.4}\n}';
    expect(() => parse(pretty)).toThrow(expect.objectContaining({ status: 400, code: 'PW_BAD_JSON', message: expect.stringMatching(/^the body is not valid JSON: /) }));
    // A pretty-printed array, even with one object per line, is no NDJSON either.
    expect(() => parse(`[\n${line('a')}\n${line('b')}\n]`)).toThrow(expect.objectContaining({ code: 'PW_BAD_JSON' }));
  });

  it('reads NDJSON sent as JSON with a bad or cut-off line: the good lines are items, the bad ones line errors', () => {
    const body = [line('a'), '{"pumpId": "b", bad}', line('c'), '{"pumpId": "d", "ts": 17'].join('\r\n');
    const parsed = parse(body);
    expect(parsed.items.map((i) => i.index)).toEqual([0, 2]);
    expect(parsed.lineErrors).toEqual([
      { index: 1, error: expect.stringMatching(/^line 2 is not valid JSON: /), raw: '{"pumpId": "b", bad}' },
      { index: 3, error: expect.stringMatching(/^line 4 is not valid JSON: /), raw: '{"pumpId": "d", "ts": 17' },
    ]);
  });

  it('names the line of a bad NDJSON line counting blank lines', () => {
    const body = `${line('a')}\n\n{"pumpId":"p", bad}\n\n`;
    for (const contentType of ['application/x-ndjson', JSON_TYPE]) {
      const parsed = parse(body, contentType);
      expect(parsed.items).toHaveLength(1);
      expect(parsed.lineErrors).toEqual([{ index: 1, error: expect.stringMatching(/^line 3 is not valid JSON: /), raw: '{"pumpId":"p", bad}' }]);
    }
  });

  it('accepts a body that starts with a UTF-8 byte order mark', () => {
    const bom = '\uFEFF';
    expect(parse(`${bom}${line('a')}`).items).toEqual([{ index: 0, value: JSON.parse(line('a')), raw: line('a') }]);
    expect(parse(`${bom}${line('a')}\n${line('b')}`, 'application/x-ndjson').items.map((i) => i.value)).toEqual([JSON.parse(line('a')), JSON.parse(line('b'))]);
    expect(() => parse(`${bom}  `)).toThrow(expect.objectContaining({ code: 'PW_EMPTY_BODY' }));
  });

  it('refuses a body nested deeper than 16 levels before parsing it, naming the line and column', () => {
    // A reading nests 3 deep; 16 passes (to be refused item by item), 17 does not.
    expect(parse(`[${'['.repeat(15)}${']'.repeat(15)}]`).items).toHaveLength(1);
    const tooDeep = expect.objectContaining({ status: 400, code: 'PW_JSON_TOO_DEEP', message: 'the body has arrays and objects nested deeper than 16 levels (at line 1, column 17); a reading nests 3 deep at most' });
    expect(() => parse(`${'['.repeat(5000)}${']'.repeat(5000)}`)).toThrow(tooDeep);
    // brackets inside strings (escaped quotes too) do not count; the line counts lines
    const stringy = `{"pumpId": "p[[[\\"{{{",\n "values": ${'{"a":'.repeat(16)}1${'}'.repeat(16)}}`;
    expect(() => parse(stringy)).toThrow(expect.objectContaining({ code: 'PW_JSON_TOO_DEEP', message: expect.stringContaining('(at line 2, column 87)') }));
  });

  it('refuses an NDJSON line nested too deep as that line, keeping the others', () => {
    const deep = `{"pumpId":"p","ts":1,"values":${'['.repeat(4000)}${']'.repeat(4000)}}`;
    for (const contentType of ['application/x-ndjson', JSON_TYPE]) {
      const parsed = parse([line('a'), deep, line('c')].join('\n'), contentType);
      expect(parsed.items.map((i) => i.index)).toEqual([0, 2]);
      expect(parsed.lineErrors).toEqual([{ index: 1, error: 'line 2 has arrays and objects nested deeper than 16 levels (at column 46); a reading nests 3 deep at most', raw: deep }]);
    }
    // Cut-off lines leave brackets open: together they pass 16, each alone does not.
    const cut = Array.from({ length: 20 }, () => '{"pumpId":"p","values":{"a":1').join('\n');
    expect(parse(cut).lineErrors.map((e) => e.error)).toEqual(Array.from({ length: 20 }, (_, i) => expect.stringMatching(new RegExp(`^line ${i + 1} is not valid JSON`))));
  });
});
