/**
 * An alert's id names its buffer: seqs start again at 1 in a new buffer file (a replaced data
 * volume), and a control room deduplicating on (deviceId, id) would otherwise drop the new file's
 * first alarms as repeats of the old one's. And `topFeatures` lists only sensors that added to the
 * score: with few sensors in play it was filled up with zeros.
 */
import { describe, expect, it } from 'vitest';
import { idOf, topFeatures, type Alert } from '../../agent/edge/alerts.js';

const alert = (over: Partial<Alert> = {}): Alert =>
  ({ kind: 'anomaly', deviceId: 'gw-1', pumpId: 'pump-1', seq: 7, ts: '2026-12-07T10:00:00.000Z', score: 3, threshold: 2.5, modelVersion: 'v1', topFeatures: [], suppressedSinceLast: 0, ...over }) as Alert;

describe('an alert id', () => {
  it('differs between two buffers for the same kind and seq, and is stable for one', () => {
    expect(idOf(alert(), 0, 'aaaaaaaaaaaaaaaa')).toBe('anomaly:aaaaaaaaaaaaaaaa:7');
    expect(idOf(alert(), 0, 'bbbbbbbbbbbbbbbb')).not.toBe(idOf(alert(), 0, 'aaaaaaaaaaaaaaaa'));
    expect(idOf(alert({ kind: 'pump-silent' }), 1234, 'aaaaaaaaaaaaaaaa')).toBe('pump-silent:aaaaaaaaaaaaaaaa:7:1234');
  });
});

describe('topFeatures', () => {
  it('lists the sensors that added to the score, largest first, and none that added nothing', () => {
    expect(topFeatures({ Current: 0, Pressure: 2, Flow: 0.5, Temperature: Number.NaN })).toEqual([
      { feature: 'Pressure', contribution: 2 },
      { feature: 'Flow', contribution: 0.5 },
    ]);
  });
});
