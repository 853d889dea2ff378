/**
 * A label given on an alarm still running follows its episode to the end (buffer/label-follow.ts):
 * posted on the real agent, moved by its job as more alerts come, closed once readings past the gap
 * end the episode, and only then uploaded to a real Azurite, once, with its final range, which the
 * trainer's reader takes. A range given, a reading that is not an alert, an episode already ended
 * never follow; a withdrawal closes an open label.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readLabels } from '../../sync/labels-upload.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';

const NORMAL = { Pressure: 1.4, Flow: 30, Current: 1.4 };
const FAULT = { Pressure: 0.2, Flow: 45, Current: 0.6 };
const DEVICE = 'gw-follow';
/** Long enough for a few runs of the follow job (every 5 s) and of the sync (every second). */
const WAIT = { timeout: 20_000, interval: 200 };

let az: TestAzurite;
let t: TestAgent;
const iso = (ms: number) => new Date(ms).toISOString();
const getJson = async (path: string) => (await (await fetch(`${t.url}${path}`)).json()) as any;
const container = () => az.container('follow-test');

async function readings(pumpId: string, rows: Array<[Record<string, number>, number]>): Promise<void> {
  const r = await postJson(`${t.url}/readings`, rows.map(([values, ts]) => ({ pumpId, ts, values })));
  expect(r.status).toBe(202);
}
const alerts = async (pumpId: string): Promise<Array<{ seq: number; ts: string }>> => (await getJson(`/alerts?pumpId=${pumpId}`)).alerts;
const stored = async (pumpId: string, id: string) => (await getJson(`/labels?pumpId=${pumpId}&withdrawn=1`)).labels.find((l: any) => l.id === id);
const inLake = async (pumpId: string) => ((await container().exists()) ? await readLabels(container(), DEVICE, { pumps: [pumpId] }) : []);

/** A label of another pump, closed: uploaded at the next sync cycle, so a label not uploaded by then was held back. */
async function witness(pumpId: string): Promise<void> {
  const now = Date.now();
  const posted = await postJson(`${t.url}/labels`, { pumpId, kind: 'maintenance', from: now - 60_000, to: now, author: 'Ben' });
  expect(posted.json.label.episodeOpen).toBe(false);
  await vi.waitFor(async () => expect((await stored(pumpId, posted.json.label.id)).synced).toBe(true), WAIT);
}

beforeAll(async () => {
  az = await startTestAzurite();
  t = await startTestAgent({
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
    PUMPWATCH_BLOB_CONTAINER: 'follow-test',
    PUMPWATCH_DEVICE_ID: DEVICE,
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1',
  });
});

afterAll(async () => {
  await t?.stop();
  await az?.dispose();
});

describe('a label on an alarm still running', () => {
  it('follows the episode as alerts come, is not uploaded while open, and is uploaded once it ends, with the range the trainer reads', async () => {
    const t0 = Date.now() - 100_000;
    await readings('fo-1', [[NORMAL, t0 - 5_000], [FAULT, t0], [FAULT, t0 + 5_000], [FAULT, t0 + 10_000]]);
    const [newest] = await alerts('fo-1');
    const posted = await postJson(`${t.url}/labels`, { pumpId: 'fo-1', kind: 'confirmed-fault', faultType: 'bearing', alertSeq: newest!.seq, author: 'Ana' });
    expect(posted.status).toBe(201);
    expect(posted.json.label).toMatchObject({ from: iso(t0), to: iso(t0 + 10_000), episodeOpen: true, synced: false });
    expect(posted.json.message).toMatch(/^The alarm of fo-1 is still going on: this label will follow it until it ends .*, covering all of it, and be uploaded then\.$/);
    const id = posted.json.label.id as string;

    // more alerts of the same episode: the label's stored range follows them, and every view shows it
    await readings('fo-1', [[FAULT, t0 + 15_000], [NORMAL, t0 + 18_000], [FAULT, t0 + 20_000]]);
    await vi.waitFor(async () => expect(await stored('fo-1', id)).toMatchObject({ from: iso(t0), to: iso(t0 + 20_000), episodeOpen: true }), WAIT);
    expect((await alerts('fo-1')).map((a: any) => a.label?.id)).toEqual([id, id, id, id, id]);
    expect((await getJson(`/alerts/${newest!.seq}/episode`)).label).toMatchObject({ id, to: iso(t0 + 20_000), episodeOpen: true });
    // a sync cycle since uploaded another label, not this one
    await witness('fo-w1');
    expect((await stored('fo-1', id)).synced).toBe(false);
    expect((await inLake('fo-1')).map((l) => l.id)).toEqual([]);

    // readings past the gap end the episode: closed at its last alert, then uploaded once with that range
    await readings('fo-1', [[NORMAL, t0 + 50_000], [NORMAL, t0 + 85_000]]);
    await vi.waitFor(async () => expect(await stored('fo-1', id)).toMatchObject({ episodeOpen: false, synced: true }), WAIT);
    const final = { from: iso(t0), to: iso(t0 + 20_000) };
    expect(await stored('fo-1', id)).toMatchObject(final);
    expect(await inLake('fo-1')).toEqual([expect.objectContaining({ id, kind: 'confirmed-fault', alertSeq: newest!.seq, ...final })]);
    const blobs: string[] = [];
    for await (const b of container().listBlobsFlat({ prefix: `labels/${DEVICE}/` })) if (b.name.endsWith(`/${id}.json`)) blobs.push(b.name);
    expect(blobs).toHaveLength(1);
  });

  it('is closed at once, and says episodeOpen false, on an episode that ended or on a pump silent for longer than the hold limit', async () => {
    const t0 = Date.now() - 300_000;
    await readings('fo-2', [[FAULT, t0], [FAULT, t0 + 10_000], [NORMAL, t0 + 80_000]]);
    const [ended] = await alerts('fo-2');
    const posted = await postJson(`${t.url}/labels`, { pumpId: 'fo-2', kind: 'false-alarm', alertSeq: ended!.seq, author: 'Ana' });
    expect(posted.status).toBe(201);
    expect(posted.json.label).toMatchObject({ from: iso(t0), to: iso(t0 + 10_000), episodeOpen: false });
    expect(posted.json.message).toBeUndefined();
    await vi.waitFor(async () => expect((await stored('fo-2', posted.json.label.id)).synced).toBe(true), WAIT);

    // in alarm at its last reading, 11 minutes ago: no reading ends its episode, the hold limit does
    const s0 = Date.now() - 11 * 60_000;
    await readings('fo-3', [[FAULT, s0], [FAULT, s0 + 5_000]]);
    const [silent] = await alerts('fo-3');
    const held = await postJson(`${t.url}/labels`, { pumpId: 'fo-3', kind: 'confirmed-fault', faultType: 'other', alertSeq: silent!.seq, author: 'Ana' });
    expect(held.json.label).toMatchObject({ from: iso(s0), to: iso(s0 + 5_000), episodeOpen: false });
  });

  it('never follows with a range given, nor on a reading that is not an alert', async () => {
    const t0 = Date.now() - 30_000;
    await readings('fo-4', [[FAULT, t0], [FAULT, t0 + 5_000], [NORMAL, t0 + 7_000]]);
    const [second, first] = await alerts('fo-4');
    const part = await postJson(`${t.url}/labels`, { pumpId: 'fo-4', kind: 'false-alarm', alertSeq: first!.seq, from: t0, to: t0, author: 'Ben' });
    expect(part.json.label).toMatchObject({ from: iso(t0), to: iso(t0), episodeOpen: false });
    const normalSeq = (await getJson('/pumps/fo-4/predictions?limit=1')).predictions[0].seq as number;
    const missed = await postJson(`${t.url}/labels`, { pumpId: 'fo-4', kind: 'confirmed-fault', faultType: 'seal-leak', alertSeq: normalSeq, author: 'Ben' });
    expect(missed.json.label).toMatchObject({ from: iso(t0 + 7_000), to: iso(t0 + 7_000), episodeOpen: false });
    // a label that follows the same episode shows the job ran: the others stayed as given
    const open = await postJson(`${t.url}/labels`, { pumpId: 'fo-4', kind: 'confirmed-fault', faultType: 'seal-leak', alertSeq: second!.seq, author: 'Ana' });
    expect(open.json.label.episodeOpen).toBe(true);
    await readings('fo-4', [[FAULT, t0 + 10_000]]);
    await vi.waitFor(async () => expect((await stored('fo-4', open.json.label.id)).to).toBe(iso(t0 + 10_000)), WAIT);
    expect(await stored('fo-4', part.json.label.id)).toMatchObject({ from: iso(t0), to: iso(t0), episodeOpen: false });
    expect(await stored('fo-4', missed.json.label.id)).toMatchObject({ from: iso(t0 + 7_000), to: iso(t0 + 7_000), episodeOpen: false });
  });

  it('is closed by its withdrawal with the range it has, uploaded then, before its withdrawal, and follows no more', async () => {
    const t0 = Date.now() - 30_000;
    await readings('fo-5', [[FAULT, t0], [FAULT, t0 + 5_000]]);
    const [alert] = await alerts('fo-5');
    const posted = await postJson(`${t.url}/labels`, { pumpId: 'fo-5', kind: 'confirmed-fault', faultType: 'impeller', alertSeq: alert!.seq, author: 'Ana' });
    expect(posted.json.label.episodeOpen).toBe(true);
    const id = posted.json.label.id as string;
    const res = await fetch(`${t.url}/labels/${id}`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'Ana', note: 'wrong pump' }) });
    expect(res.status).toBe(201);
    const { withdrawal } = (await res.json()) as { withdrawal: { id: string } };
    expect(await stored('fo-5', id)).toMatchObject({ episodeOpen: false, to: iso(t0 + 5_000) });
    await readings('fo-5', [[FAULT, t0 + 10_000]]);
    await vi.waitFor(async () => expect((await stored('fo-5', id)).withdrawal.synced).toBe(true), WAIT);
    expect(await stored('fo-5', id)).toMatchObject({ synced: true, from: iso(t0), to: iso(t0 + 5_000) });
    // both went up (the label first: the trainer's reader drops it by its withdrawal)
    const kinds: string[] = [];
    for await (const b of container().listBlobsFlat({ prefix: `labels/${DEVICE}/`, includeMetadata: true })) if (b.metadata?.pumpid === 'fo-5') kinds.push(`${b.name.split('/').at(-1)} ${b.metadata?.kind}`);
    expect(kinds.sort()).toEqual([`${id}.json confirmed-fault`, `${withdrawal.id}.json withdrawal`].sort());
    expect(await inLake('fo-5')).toEqual([]);
  });
});
