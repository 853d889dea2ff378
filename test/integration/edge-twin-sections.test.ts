/**
 * What the operator sees on the reported side for desired sections, with the agent as a module on
 * the local hub (the real azure-iot-device MQTT client): a misspelt top-level section is refused
 * under its own name with the nearest known one (and logged once), and the refusal goes when the
 * key does; a section's reported `value` is the value in force, not the desired text; a field of a
 * known section that this agent version does not know is named as not applied while the section's
 * known fields apply.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-sections';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
let connectionString: string;
const logs: string[] = [];

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const unknownSectionLogs = (section: string) => logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'PW_EDGE_TWIN_UNKNOWN_SECTION' && l.section === section);
const unknownSettingLogs = (section: string) => logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'PW_EDGE_TWIN_UNKNOWN_SETTING' && l.section === section);
const ALERTS_KNOWN = '(known: minIntervalSeconds, sensorMinIntervalSeconds, silentAfterSeconds, notScoredAfterSeconds, heartbeatSeconds)';

/** The agent as the module, logging its warnings into `logs`. */
const startAgent = () =>
  startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: connectionString, PUMPWATCH_DEVICE_ID: DEVICE },
    { hubCa: hub.ca, logger: createLogger('warn', { write: (line: string) => logs.push(line) }) },
  );

beforeAll(async () => {
  hub = await LocalHub.start();
  connectionString = hub.addModule(DEVICE, MODULE);
  t = await startAgent();
  await until(() => expect(reported().state).toBeDefined());
});

afterAll(async () => {
  await t?.stop();
  await hub?.stop();
});

describe('a misspelt top-level desired section', () => {
  it('is refused under its own name with the nearest known section, logged once, and cleared when deleted', async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { Alerts: { minIntervalSeconds: 300 }, firstmodel: { afterHours: 2 } });
    // `value: null` (nothing of it is in force) deletes the field on the hub.
    await until(() => expect(reported().Alerts).toEqual({ ac: 400, av: v, ad: expect.stringMatching(/^unknown section "Alerts"; did you mean alerts\? \(known: models, sync, buffer, alerts/) }));
    expect(reported().firstmodel).toMatchObject({ ac: 400, av: v, ad: expect.stringContaining('did you mean firstModel?') });
    expect(reported().alerts).toBeUndefined();

    // Another change elsewhere reconciles the whole document again: the refusal is not logged again.
    const other = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 40 } });
    await until(() => expect(reported().sync).toMatchObject({ ac: 200, av: other }));
    expect(unknownSectionLogs('Alerts')).toHaveLength(1);
    expect(reported().Alerts).toMatchObject({ av: v });

    hub.updateDesired(DEVICE, MODULE, { Alerts: null, firstmodel: null });
    await until(() => expect(reported().Alerts).toBeUndefined());
    expect(reported().firstmodel).toBeUndefined();
  });

  it("is no longer refused once deleted while the agent was stopped (an earlier run's refusal is deleted)", async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { alert: { minIntervalSeconds: 300 }, sync: { intervalSeconds: 41 } });
    await until(() => expect(reported().alert).toMatchObject({ ac: 400, av: v, ad: expect.stringContaining('did you mean alerts?') }));
    await t.stop();
    hub.updateDesired(DEVICE, MODULE, { alert: null });
    t = await startAgent();
    await until(() => expect(reported().alert).toBeUndefined());
    expect(reported().sync).toMatchObject({ ac: 200 });
  });
});

describe('a setting section deleted while the agent was stopped', () => {
  it('loses its acknowledgement (a refusal here) on the reported side, as nothing of it is desired any more', async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { ingest: { maxPastSeconds: 'a year' }, sync: { intervalSeconds: 42 } });
    await until(() => expect(reported().ingest).toMatchObject({ ac: 400, av: v }));
    await t.stop();
    hub.updateDesired(DEVICE, MODULE, { ingest: null });
    t = await startAgent();
    await until(() => expect(reported().ingest).toBeUndefined());
    expect(reported().sync).toMatchObject({ ac: 200 }); // a section still desired keeps its own
  });
});

describe('many unknown top-level desired keys', () => {
  it('are refused on the reported side up to 20, the rest in the log only, so the reported document stays within its 32 KB', async () => {
    const junk = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`junk${String(i).padStart(3, '0')}`, { x: i }]));
    const v = hub.updateDesired(DEVICE, MODULE, junk);
    await until(() => expect(unknownSectionLogs('junk199')).toHaveLength(1));
    const refusedOnHub = () => Object.keys(reported()).filter((k) => k.startsWith('junk'));
    await until(() => expect(refusedOnHub()).toHaveLength(20));
    expect(reported().junk000).toMatchObject({ ac: 400, av: v });
    expect(unknownSectionLogs('junk150')[0]).toMatchObject({ reported: false, msg: expect.stringContaining('acknowledged in the log only: more than 20 unknown keys are desired') });
    // the acknowledgements of the known sections still reach the hub
    const w = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 45 } });
    await until(() => expect(reported().sync).toMatchObject({ ac: 200, av: w }));
    hub.updateDesired(DEVICE, MODULE, Object.fromEntries(Object.keys(junk).map((k) => [k, null])));
    await until(() => expect(refusedOnHub()).toHaveLength(0));
  });
});

describe('a field of a known section that this agent version does not know (set fleet-wide for newer agents)', () => {
  it('is acknowledged as not applied, logged once, while the known fields of the section are in force', async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 120, quietHours: 3 } });
    await until(() =>
      expect(reported().alerts).toEqual({
        value: { minIntervalSeconds: 120 },
        ac: 207,
        av: v,
        ad: `applied; alerts.quietHours: unknown setting, not known to this agent version, not applied ${ALERTS_KNOWN}`,
      }),
    );
    expect(t.agent.config.alertsMinIntervalSeconds).toBe(120);
    expect(unknownSettingLogs('alerts')).toEqual([
      expect.objectContaining({ settings: ['alerts.quietHours'], reported: ['alerts.quietHours'], msg: expect.stringContaining('alerts.quietHours: unknown setting, not known to this agent version') }),
    ]);

    // A change elsewhere does not log it again.
    const other = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 43 } });
    await until(() => expect(reported().sync).toMatchObject({ ac: 200, av: other }));
    expect(unknownSettingLogs('alerts')).toHaveLength(1);

    // Once the field is deleted, the acknowledgement is a plain `applied`.
    const w = hub.updateDesired(DEVICE, MODULE, { alerts: { quietHours: null } });
    await until(() => expect(reported().alerts).toEqual({ value: { minIntervalSeconds: 120 }, ac: 200, av: w, ad: 'applied' }));
  });

  it('does not save a known field with an invalid value: the section is refused whole, both named, the last good settings stay', async () => {
    const good = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 150, sensorMinIntervalSeconds: 600, quietHours: null } });
    await until(() => expect(reported().alerts).toMatchObject({ ac: 200, av: good }));
    const v = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: -5, sensorMinIntervalSeconds: 700, quietHours: 3 } });
    await until(() => expect(reported().alerts).toMatchObject({ ac: 400, av: v }));
    expect(reported().alerts.ad).toMatch(/^alerts\.quietHours: unknown setting, not known to this agent version, not applied \(known: .*\); alerts\.minIntervalSeconds=-5: /);
    expect(reported().alerts.value).toEqual({ minIntervalSeconds: 150, sensorMinIntervalSeconds: 600 });
    expect(t.agent.config.alertsMinIntervalSeconds).toBe(150);
    expect(t.agent.config.alertsSensorMinIntervalSeconds).toBe(600);
    const reset = hub.updateDesired(DEVICE, MODULE, { alerts: null });
    await until(() => expect(reported().alerts).toEqual({ ac: 200, av: reset, ad: 'reset to start-up values' }));
  });

  it('counts with the unknown top-level keys: 20 named on the reported side in all, the rest in the log only', async () => {
    const fields = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`future${String(i).padStart(2, '0')}`, i]));
    const junk = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`stray${i}`, { x: i }]));
    const v = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 44, ...fields }, ...junk });
    await until(() => expect(reported().sync).toMatchObject({ value: { intervalSeconds: 44 }, ac: 207, av: v }));
    expect(t.agent.config.syncIntervalSeconds).toBe(44);
    const ad = reported().sync.ad as string;
    expect(ad).toMatch(/^applied; sync\.future00, .*, sync\.future19 and 5 more: unknown settings, not known to this agent version, not applied \(5 named in the log only: more than 20 unknown keys are desired\) \(known: /);
    expect(ad).not.toContain('future20');
    expect(unknownSettingLogs('sync').at(-1)).toMatchObject({ settings: expect.arrayContaining(['sync.future24']) });
    // The section took the 20: the unknown top-level keys are refused in the log only.
    await until(() => expect(unknownSectionLogs('stray4')).toHaveLength(1));
    expect(unknownSectionLogs('stray0')[0]).toMatchObject({ reported: false });
    expect(Object.keys(reported()).filter((k) => k.startsWith('stray'))).toEqual([]);
    const w = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 44, ...Object.fromEntries(Object.keys(fields).map((k) => [k, null])) }, ...Object.fromEntries(Object.keys(junk).map((k) => [k, null])) });
    await until(() => expect(reported().sync).toEqual({ value: { intervalSeconds: 44 }, ac: 200, av: w, ad: 'applied' }));
  });
});

describe('a desired `models` that is not an object', () => {
  it('is refused in modelsRefused, deleted once models is fixed, also while the agent was stopped', async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { models: 'v2' });
    await until(() => expect(reported().modelsRefused).toEqual({ ac: 400, av: v, ad: 'models: expected an object of model entries by pump id' }));
    await t.stop();
    hub.updateDesired(DEVICE, MODULE, { models: null });
    t = await startAgent();
    await until(() => expect(reported().modelsRefused).toBeUndefined());
  });
});

describe("a setting section's reported value", () => {
  it('is the value in force, not the desired text', async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: '30 ' } });
    await until(() => expect(reported().sync).toEqual({ value: { intervalSeconds: 30 }, ac: 200, av: v, ad: 'applied' }));
    expect(t.agent.config.syncIntervalSeconds).toBe(30);
  });
});
