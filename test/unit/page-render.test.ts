/**
 * The page's texts (agent/page/render.js, plain ES module run by the browser; imported here as Node
 * runs it), as the field technician's review read them on the page.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
// @ts-expect-error: the page's modules are plain JavaScript without type declarations
import { cloudSummary, credentialFacts, firstModelNote, hubSummary, modelScope, modelTraining, pumpWhy, rangeNote, topShares } from '../../agent/page/render.js';
// @ts-expect-error: as above
import { fmtClock, fmtTime } from '../../agent/page/format.js';

/** A README's text with its line breaks as spaces, as a quote spans lines. */
const readme = (path: string) => readFileSync(join(packageRoot(), path), 'utf8').replace(/\s+/g, ' ');

describe('cloud line with a stalled link', () => {
  // Seen live (rev-tech): Blob Storage frozen, each attempt timed out after 61.5 s and the next began
  // at once, so /status said sync.state "uploading" with blob "offline" for minutes, shown in grey.
  it('flags "no connection" with the last upload when the blob is offline while an upload is in flight', () => {
    const status = {
      sync: {
        state: 'uploading',
        lastSuccessAt: new Date(Date.now() - 130_000).toISOString(),
        lastError: 'no answer from Blob Storage for 61.5 s (uploading readings/…): the connection stalled, the request was given up',
        lastErrorAt: new Date(Date.now() - 3_000).toISOString(),
      },
      connectivity: { blob: 'offline' },
      buffer: { unsynced: 519 },
    };
    expect(cloudSummary(status)).toEqual({ text: 'Cloud: no connection to the cloud, retrying · 519 readings waiting · last upload 2 min ago', problem: true });
  });
});

describe('the generic default model in words', () => {
  it('says it was fitted at six duty points, as the bundled model was (README, agent/http/generic-range.ts)', () => {
    const { warning } = modelScope({ key: 'default', version: 'default-2' });
    expect(warning).toMatch(/simulated pumps at six duty points/);
    expect(warning).not.toMatch(/one duty point/);
  });

  it('is quoted in agent/page/README.md as the page says it when a pump is outside its range', () => {
    const note = rangeNote({ outsideGenericRange: { anomalies: 3600, scored: 3600, windowMinutes: 60 } }) as string;
    expect(readme('agent/page/README.md')).toContain(`"${note}"`);
  });
});

describe('main contributors', () => {
  it('leaves out a sensor under 1 %, which read "0 %" among the main ones', () => {
    expect(topShares({ Pressure: 0.7, Current: 0.295, Voltage: 0.004, Flow: 0.001 })).toBe('Pressure 70 %, Current 30 %');
    expect(topShares({ Pressure: 0.5, Current: 0.3, Voltage: 0.2, Flow: 0.1 })).toBe('Pressure 45 %, Current 27 %, Voltage 18 %');
  });
});

describe('the last upload right after the agent restarted', () => {
  // /status sync.lastSuccessAt counts from the agent's start: "never" read as no upload ever, though
  // uploads had succeeded seconds before the restart.
  const startedAt = '2026-12-07T08:00:05.000Z';
  const status = { startedAt, sync: { state: 'retrying', lastSuccessAt: null }, connectivity: { blob: 'offline' }, buffer: { unsynced: 12 } };

  it('says no upload since the agent started, with when it started, in the cloud line', () => {
    const { text, problem } = cloudSummary(status);
    expect(problem).toBe(true);
    expect(text).toMatch(/ · no upload since the agent started at \S.*$/);
    expect(text).not.toMatch(/nothing uploaded yet|never/);
  });

});

describe('alerts for the control room while the IoT hub is down', () => {
  // Commissioning review: hub down, P-102 in alarm, alerts.pending 1, and the page said only
  // "Cloud: upload failed…" (test/integration/edge.test.ts checks it on a real agent's /status).
  const since = '2026-12-08T03:02:00.000Z';
  const status = (pending: number, hub: string, hubUnreachableSince: string | null, alerts = true) => ({
    alerts: alerts ? { pending, sent: 3 } : null,
    connectivity: { hub, blob: 'online', hubReportedError: null, hubUnreachableSince },
  });

  it('says how many alerts wait, and since when the hub is unreachable', () => {
    expect(hubSummary(status(2, 'reconnecting: the IoT hub (edgeHub) could not be reached: connection refused (connect ECONNREFUSED 10.0.0.4:8883)', since))).toEqual({
      text: `2 alerts not yet delivered to the control room: the IoT hub is unreachable since ${fmtClock(since)}`,
      problem: true,
    });
    expect(hubSummary(status(0, 'connecting', since))).toMatchObject({ text: `Control room: the IoT hub is unreachable since ${fmtClock(since)}; no alert waiting, a new one is kept until it is back`, problem: true });
  });

  it('says nothing once all are delivered, nor without the IoT Edge client; alerts on their way are not a problem', () => {
    expect(hubSummary(status(0, 'connected', null))).toBeNull();
    expect(hubSummary(status(0, 'not configured', null, false))).toBeNull();
    expect(hubSummary(status(1, 'connected', null))).toEqual({ text: '1 alert being delivered to the control room', problem: false });
  });

  it('is quoted in agent/page/README.md as the page says it', () => {
    expect(readme('agent/page/README.md')).toContain('"1 alert not yet delivered to the control room: the IoT hub is unreachable since 03:02"');
  });
});

describe('a pump its model cannot score: it lacks sensors (commissioning review, H1 + L4)', () => {
  const generic = { key: 'default', version: 'default-2', training: null };
  const card = {
    pumpId: 'site-1',
    state: 'not-scored',
    detail: 'no value known yet for feature "Accelerometer1RMS"',
    model: generic,
    lackedSensors: { lacks: ['Accelerometer1RMS', 'Current'], sends: [], others: ['Flow_m3h', 'MotorCurrent_A'] },
  };

  it('names the sensors it lacks, those it sends, and the way out, not "no value known yet"', () => {
    expect(pumpWhy(card)).toBe(
      'Not scored: the default model needs sensors this pump does not send: Accelerometer1RMS, Current. It sends none of them. Its readings name Flow_m3h, MotorCurrent_A. Deploy a model of its own, or fit one for the site (README "Commissioning a site whose sensors have their own names").',
    );
    // a pump merely waiting for a value (a gap) keeps its reason
    expect(pumpWhy({ ...card, lackedSensors: null })).toBe('No value known yet for feature "Accelerometer1RMS".');
  });

  it('does not say "Scored by" the model of a pump it does not score', () => {
    expect(modelTraining(generic, false).text).toBe('Not scored yet by the generic default model default-2.');
    expect(modelTraining(generic, true).text).toMatch(/^Scored by the generic default model/);
  });

  it('does not call a default model set with PUMPWATCH_DEFAULT_MODEL the generic one fitted on simulated pumps', () => {
    const site = { ...generic, defaultFile: 'site-model.onnx' };
    expect(modelScope(site).badge).toBe('Gateway default model (site-model.onnx) — not trained on this pump alone');
    expect(modelScope(site).warning).not.toMatch(/simulated/);
    expect(modelTraining(site).text).toMatch(/^Scored by the gateway's default model default-2 \(site-model\.onnx\)/);
  });
});

describe('the sync credential in the gateway facts', () => {
  // The commissioning review: the SAS's expiry was only in /status and the log.
  const inDays = (d: number) => new Date(Date.now() + d * 86_400_000 + 3_600_000).toISOString();
  it('says when the SAS expires and what is wrong with it, and nothing for a credential that does not expire', () => {
    const at = inDays(83);
    expect(credentialFacts({ targetExpiresAt: at, credentialWarnings: [] })).toEqual([['Cloud credential', `SAS expires ${fmtTime(at)} (in 83 days)`]]);
    const warned = credentialFacts({
      targetExpiresAt: at,
      credentialWarnings: ['the SAS credential of the sync target: it is an account SAS (ss=, srt=): it reaches every container of the account, the model registry\'s included, and creates containers; sign a container SAS (sr=c) for the uploads\' container'],
    });
    expect(warned[0][1]).toBe(`SAS expires ${fmtTime(at)} (in 83 days); it is an account SAS (ss=, srt=): it reaches every container of the account, the model registry's included, and creates containers; sign a container SAS (sr=c) for the uploads' container`);
    const gone = inDays(-3);
    expect(credentialFacts({ targetExpiresAt: gone })).toEqual([['Cloud credential', `SAS expired ${fmtTime(gone)}: uploads are refused`]]);
    expect(credentialFacts({ targetExpiresAt: null, credentialWarnings: [] })).toEqual([]);
    expect(credentialFacts({})).toEqual([]);
  });
});

describe("a pump's first model fitted on the gateway (commissioning review: the page showed none of it)", () => {
  // /status `firstModels` as agent/first-model/state.ts view() gives it
  const expectedAt = '2026-12-08T14:05:00.000Z';
  const at = '2026-12-08T13:02:11.000Z';
  const firstModels = (pumps: Record<string, object>, afterHours = 1) => ({ afterHours, lastCheckAt: at, checks: 3, fitting: null, error: null, turnedOff: null, pumps });
  const waiting = { state: 'waiting', version: null, reason: 'its running readings span 0.4 h of the 1 h needed', spanHours: 0.4, neededHours: 1, at: null, expectedAt };
  const refusedReason = 'its readings have never held Current or Volume Flow RateRMS, which the stop rule names: set PUMPWATCH_FIRST_MODEL_STOPPED_WHEN to a rule on its sensors, or none';

  it('says a waiting pump waits for its hours of running readings, how far it is, and when it is expected, on the page clock', () => {
    expect(firstModelNote(firstModels({ 'P-1': waiting }), 'P-1')).toEqual({
      text: `First model: waiting for 1 h of running readings (0.4 h so far); expected about ${fmtClock(expectedAt)}`,
      problem: false,
    });
    // no estimate yet (the pump has not run): no "expected about"
    expect(firstModelNote(firstModels({ 'P-1': { ...waiting, spanHours: 0, neededHours: 24, expectedAt: null } }, 24), 'P-1').text).toBe('First model: waiting for 24 h of running readings (0 h so far)');
  });

  it('says a refused first model with its reason, as a problem', () => {
    const refused = { state: 'refused', version: null, reason: refusedReason, spanHours: 0, neededHours: null, at };
    expect(firstModelNote(firstModels({ 'P-1': refused }), 'P-1')).toEqual({ text: `First model refused: ${refusedReason}`, problem: true });
  });

  it('says which first model was fitted, on how many readings and when', () => {
    const fitted = { state: 'fitted', version: 'gw-20261208-0123456789ab', reason: null, spanHours: 1.02, neededHours: null, at, rows: 3672 };
    const note = firstModelNote(firstModels({ 'P-1': fitted }), 'P-1');
    expect(note.text).toMatch(/^First model gw-20261208-0123456789ab fitted on 3,672 readings at \S/);
    expect(note.text).not.toContain('–');
    expect(note.problem).toBe(false);
  });

  it('says nothing with first models off, for a pump without an entry, or a retired one', () => {
    expect(firstModelNote(firstModels({ 'P-1': waiting }, 0), 'P-1')).toBeNull();
    expect(firstModelNote(firstModels({ 'P-1': waiting }), 'P-2')).toBeNull();
    expect(firstModelNote(firstModels({ 'P-1': { state: 'retired', version: 'gw-1', reason: 'the module twin names a model for this pump', spanHours: null, neededHours: null, at } }), 'P-1')).toBeNull();
    expect(firstModelNote(undefined, 'P-1')).toBeNull();
  });
});
