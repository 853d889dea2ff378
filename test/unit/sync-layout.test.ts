import { describe, expect, it } from 'vitest';
import { bestModelBlobName, labelsPrefix, modelBlobName, parseReadingsBlobName, readingsBlobName, readingsDayPrefix } from '../../sync/layout.js';

describe('blob layout', () => {
  it('names a readings batch by pump, UTC day of its first reading, device and zero-padded sequence range', () => {
    const ts = Date.UTC(2026, 10, 23, 23, 59, 59, 999);
    expect(readingsBlobName('pump-17', 'gw-1', 42, 1041, ts)).toBe('readings/pump-17/2026/11/23/gw-1/000000000042-000000001041.jsonl.gz');
    expect(readingsBlobName('pump-17', 'gw-1', 1, 2, ts + 1)).toMatch(/^readings\/pump-17\/2026\/11\/24\//);
  });

  it('sorts names of one device in sequence order', () => {
    const names = [[9, 10], [100, 120], [11, 99]].map(([a, b]) => readingsBlobName('p', 'd', a!, b!, 0));
    expect([...names].sort()).toEqual([names[0], names[2], names[1]]);
  });

  it('parses its own names back, and refuses other names', () => {
    const name = readingsBlobName('pump.a:1', 'host/with slash', 7, 9, Date.UTC(2026, 0, 2, 3));
    expect(name).toContain('/host%2Fwith%20slash/');
    expect(parseReadingsBlobName(name)).toEqual({ pumpId: 'pump.a:1', day: Date.UTC(2026, 0, 2), deviceId: 'host/with slash', firstSeq: 7, lastSeq: 9 });
    expect(parseReadingsBlobName('readings/p/2026/01/02/d/7-9.json')).toBeNull();
    expect(parseReadingsBlobName('models/p/v1/model.onnx')).toBeNull();
  });

  it('lists one pump and day by prefix, for every device', () => {
    const prefix = readingsDayPrefix('pump-17', Date.UTC(2026, 10, 23, 12));
    expect(prefix).toBe('readings/pump-17/2026/11/23/');
    expect(readingsBlobName('pump-17', 'gw-9', 1, 1, Date.UTC(2026, 10, 23)).startsWith(prefix)).toBe(true);
    expect(readingsBlobName('pump-170', 'gw-9', 1, 1, Date.UTC(2026, 10, 23)).startsWith(prefix)).toBe(false);
  });

  it('names models, the best pointer and labels', () => {
    expect(modelBlobName('pump-17', '2026-11-23T10-00-00Z', 'model.onnx')).toBe('models/pump-17/2026-11-23T10-00-00Z/model.onnx');
    expect(bestModelBlobName('default')).toBe('models/default/best.json');
    expect(labelsPrefix('gw-1')).toBe('labels/gw-1/');
  });

  it('refuses sequence numbers and times that cannot be named', () => {
    expect(() => readingsBlobName('p', 'd', -1, 2, 0)).toThrow(/sequence number -1/);
    expect(() => readingsBlobName('p', 'd', 1, 2, Number.NaN)).toThrow(/not a valid date/);
    expect(() => readingsBlobName('..', 'd', 1, 2, 0)).toThrow(/path segment/);
  });
});
