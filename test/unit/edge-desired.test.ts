/**
 * The desired `models` entries (agent/edge/desired.ts): each refused entry's reason names the field
 * and what is wrong with it, for the reported twin (`ad`) and the log.
 */
import { describe, expect, it } from 'vitest';
import { parseModels, unknownSectionReason } from '../../agent/edge/desired.js';

const good = { version: 'v1', url: 'https://account.blob.core.windows.net/pumpwatch/m.onnx', sha256: 'ab'.repeat(32), size: 10_422 };
const reasonFor = (entry: unknown) => (parseModels({ default: entry }) as { invalid: Record<string, string> }).invalid.default;

describe('a desired model entry', () => {
  it('is taken when every field is right', () => {
    expect(parseModels({ default: good })).toEqual({ entries: { default: good }, invalid: {} });
  });

  it.each([
    ['url', 12, 'url: expected a URL string, got 12'],
    ['url', null, 'url: expected a URL string, got null'],
    ['url', { href: 'https://x' }, 'url: expected a URL string, got object'],
    ['version', 5, 'version: expected a string, got 5'],
    ['sha256', true, 'sha256: expected a string of 64 hex digits, got boolean'],
    ['size', '10422', 'size: expected a number of bytes, got string "10422"'],
    ['shadow', 'yes', 'shadow: expected true or false, got string "yes"'],
  ])('of the wrong type is refused as such, not as missing: %s = %j', (field, value, reason) => {
    expect(reasonFor({ ...good, [field]: value })).toBe(reason);
  });

  it.each(['version', 'url', 'sha256', 'size'])('without %s is refused as missing it', (field) => {
    const { [field as keyof typeof good]: _left, ...rest } = good;
    expect(reasonFor(rest)).toBe(`${field}: is required`);
  });

  it('that is not an object, or has a field it does not know, says so', () => {
    expect(reasonFor(5)).toBe('expected a model entry { version, url, sha256, size }, got 5');
    expect(reasonFor({ ...good, extra: 1 })).toBe('unknown field "extra"');
    expect(reasonFor({ ...good, url: 'not a url' })).toBe('url: not a valid URL');
  });

  it('can never mark itself as a model fitted on the gateway: a `local`, `origin` or `path` field is refused', () => {
    expect(reasonFor({ ...good, local: true })).toBe('unknown field "local"');
    expect(reasonFor({ ...good, origin: 'gateway' })).toBe('unknown field "origin"');
    expect(reasonFor({ ...good, path: '/data/models/pump-1/gw-1.onnx' })).toBe('unknown field "path"');
  });
});

describe('an unknown top-level desired key', () => {
  it.each([
    ['Alerts', 'alerts'],
    ['alert', 'alerts'],
    ['firstmodel', 'firstModel'],
    ['model', 'models'],
  ])('%s is refused with the section it is most likely a misspelling of (%s)', (key, nearest) => {
    expect(unknownSectionReason(key)).toBe(`unknown section "${key}"; did you mean ${nearest}? (known: models, sync, buffer, alerts, ingest, modelDownloads, firstModel)`);
  });

  it('far from every known section is refused with the known ones only', () => {
    expect(unknownSectionReason('telemetry')).toBe('unknown section "telemetry" (known: models, sync, buffer, alerts, ingest, modelDownloads, firstModel)');
  });
});
