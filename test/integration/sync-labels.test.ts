/**
 * Technicians' labels travel with the agent's sync: posted on the status endpoint, stored in
 * SQLite, uploaded to labels/{deviceId}/… in a real Azurite, and read back by the trainer's reader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLabels } from '../../sync/labels-upload.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';

let az: TestAzurite;
let t: TestAgent;

beforeAll(async () => {
  az = await startTestAzurite();
  t = await startTestAgent({
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
    PUMPWATCH_BLOB_CONTAINER: 'labels-test',
    PUMPWATCH_DEVICE_ID: 'gw-labels',
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1',
  });
});

afterAll(async () => {
  await t?.stop();
  await az?.dispose();
});

describe('labels through the agent sync', () => {
  it('uploads a label posted on the status endpoint to labels/ where the trainer reads it', async () => {
    const now = Date.now();
    expect((await postJson(`${t.url}/readings`, { pumpId: 'pump-l', ts: now, values: { Pressure: 1.4, Flow: 30, Current: 1.4 } })).status).toBe(202);
    const posted = await postJson(`${t.url}/labels`, {
      pumpId: 'pump-l',
      kind: 'maintenance',
      from: new Date(now - 60_000).toISOString(),
      to: new Date(now).toISOString(),
      author: 'Ana',
      note: 'seal replaced',
    });
    expect(posted.status).toBe(201);
    const container = az.container('labels-test');
    let labels: Awaited<ReturnType<typeof readLabels>> = [];
    for (let i = 0; i < 100 && labels.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      if (await container.exists()) labels = await readLabels(container, 'gw-labels');
    }
    expect(labels).toHaveLength(1);
    expect(labels[0]).toMatchObject({ pumpId: 'pump-l', kind: 'maintenance', author: 'Ana', note: 'seal replaced' });
    const list = await (await fetch(`${t.url}/labels`)).json() as { labels: Array<{ synced: boolean }> };
    expect(list.labels[0]!.synced).toBe(true);
  });

  it('uploads a label given only an alert with its whole episode as its range, the range the trainer reads', async () => {
    const t0 = Date.now() - 300_000;
    const fault = { Pressure: 0.2, Flow: 45, Current: 0.6 };
    const readings = [0, 15_000, 30_000, 45_000].map((d) => ({ pumpId: 'pump-e', ts: t0 + d, values: fault }));
    // a normal reading past the gap ends the episode: a label on a running one waits for its end (labels-follow.test.ts)
    readings.push({ pumpId: 'pump-e', ts: t0 + 120_000, values: { Pressure: 1.4, Flow: 30, Current: 1.4 } });
    expect((await postJson(`${t.url}/readings`, readings)).status).toBe(202);
    const alerts = ((await (await fetch(`${t.url}/alerts?pumpId=pump-e`)).json()) as { alerts: Array<{ seq: number; ts: string }> }).alerts;
    expect(alerts).toHaveLength(4);
    const posted = await postJson(`${t.url}/labels`, { pumpId: 'pump-e', kind: 'confirmed-fault', faultType: 'bearing', alertSeq: alerts[1]!.seq, author: 'Ana' });
    expect(posted.status).toBe(201);
    const range = { from: new Date(t0).toISOString(), to: new Date(t0 + 45_000).toISOString() };
    expect(posted.json.label).toMatchObject(range);
    const container = az.container('labels-test');
    let uploaded: Awaited<ReturnType<typeof readLabels>>[number] | undefined;
    for (let i = 0; i < 100 && uploaded === undefined; i++) {
      await new Promise((r) => setTimeout(r, 200));
      uploaded = (await readLabels(container, 'gw-labels')).find((l) => l.id === posted.json.label.id);
    }
    expect(uploaded).toMatchObject({ pumpId: 'pump-e', kind: 'confirmed-fault', alertSeq: alerts[1]!.seq, ...range });
  });

  it('uploads a withdrawal once beside the labels, and the trainer\'s reader no longer returns the withdrawn label', async () => {
    const now = Date.now();
    const range = { from: new Date(now - 60_000).toISOString(), to: new Date(now).toISOString() };
    const posted = await postJson(`${t.url}/labels`, { pumpId: 'pump-w', kind: 'confirmed-fault', faultType: 'impeller', ...range, author: 'Ana' });
    expect(posted.status).toBe(201);
    const id = posted.json.label.id as string;
    const container = az.container('labels-test');
    let ids: string[] = [];
    for (let i = 0; i < 100 && !ids.includes(id); i++) {
      await new Promise((r) => setTimeout(r, 200));
      ids = (await readLabels(container, 'gw-labels', { pumps: ['pump-w'] })).map((l) => l.id);
    }
    expect(ids).toEqual([id]);
    const res = await fetch(`${t.url}/labels/${id}`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'Ana', note: 'wrong episode' }) });
    expect(res.status).toBe(201);
    const { withdrawal } = (await res.json()) as { withdrawal: { id: string } };
    let synced = false;
    for (let i = 0; i < 100 && !synced; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const listed = (await (await fetch(`${t.url}/labels?pumpId=pump-w&withdrawn=1`)).json()) as { labels: Array<{ withdrawal: { synced: boolean } | null }> };
      synced = listed.labels[0]?.withdrawal?.synced === true;
    }
    expect(synced).toBe(true);
    expect(await readLabels(container, 'gw-labels', { pumps: ['pump-w'] })).toEqual([]);
    const blobs: Array<{ name: string; metadata?: Record<string, string> }> = [];
    for await (const b of container.listBlobsFlat({ prefix: 'labels/gw-labels/', includeMetadata: true })) if (b.metadata?.pumpid === 'pump-w') blobs.push(b);
    // One blob each (a name per id, written If-None-Match): the label and its withdrawal.
    expect(blobs.map((b) => `${b.name.split('/').at(-1)} ${b.metadata?.kind}`).sort()).toEqual([`${id}.json confirmed-fault`, `${withdrawal.id}.json withdrawal`].sort());
  });
});
