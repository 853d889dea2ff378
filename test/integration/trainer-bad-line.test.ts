/**
 * A readings blob whose sha256 metadata matches its content but one of whose lines does not decode
 * (trainer/README.md, "Exit codes"): `train` fails with PW_SYNC_BAD_LINE naming the blob and the
 * line (exit 1), and `train-all` fails that source with it, one a retry repeats (exit 4), while
 * it trains the others. Against a real Azurite, through the CLI's entry point.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchMetadata, encodeRows, sha256Hex } from '../../sync/encoder.js';
import { readingsBlobName } from '../../sync/layout.js';
import { EXIT } from '../../trainer/errors.js';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { lastLine, pumpValues, runTrainer, seedDays, trainerContext, unscoredRow } from '../support/trainer.js';
import { rng } from '../support/models.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-02'];

let az: TestAzurite;
let container: ContainerClient;
/** pump-bad's blob holding the bad line. */
let badBlob: string;

/**
 * One batch of `pumpId` (gw-1, seq 1–400, from T0) uploaded as the agent's sync uploads it, but
 * with its line `lineNo` replaced by `line`, and metadata matching the bytes uploaded: the blob
 * passes the sha256 check, the line does not decode.
 */
async function uploadWithLine(pumpId: string, lineNo: number, line: string): Promise<string> {
  const r = rng(7);
  const rows = Array.from({ length: 400 }, (_, k) => unscoredRow(pumpId, k + 1, T0 + k * 20_000, pumpValues(r, k, 30)));
  const enc = await encodeRows(rows, 'gw-1');
  const lines = gunzipSync(enc.body).toString('utf8').split('\n');
  lines[lineNo - 1] = line;
  const raw = Buffer.from(lines.join('\n'));
  const body = gzipSync(raw);
  const meta = batchMetadata({ rowCount: enc.rowCount, sha256: await sha256Hex(body), rawSha256: await sha256Hex(raw) }, { agentVersion: 'test', deviceId: 'gw-1', pumpId, firstSeq: 1, lastSeq: 400 });
  const name = readingsBlobName(pumpId, 'gw-1', 1, 400, T0);
  await container.getBlockBlobClient(name).upload(body, body.length, { metadata: meta });
  return name;
}

const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('bad-line');
  await container.create();
  await seedDays(container, 'pump-ok', T0, 1, 30, { count: 4320 });
  badBlob = await uploadWithLine('pump-bad', 2, '{"seq":2,"deviceId":"gw-1", truncated');
  await uploadWithLine('pump-noseq', 3, JSON.stringify({ seq: 'three', deviceId: 'gw-1', pumpId: 'pump-noseq', ts: new Date(T0).toISOString(), values: {} }));
});

afterAll(async () => {
  await az?.dispose();
});

describe('a readings blob with a line that does not decode (PW_SYNC_BAD_LINE)', () => {
  it('train exits 1 naming the blob, the line and what is wrong with it, and promotes nothing', async () => {
    const res = await cli(['train', '--source', 'pump-bad', ...RANGE]);
    expect(res.code).toBe(EXIT.failure);
    expect(lastLine(res.err)).toBe(`pumpwatch-trainer train: PW_SYNC_BAD_LINE: blob ${badBlob} line 2: not valid JSON`);
    const noSeq = await cli(['train', '--source', 'pump-noseq', ...RANGE]);
    expect(noSeq.code).toBe(EXIT.failure);
    expect(lastLine(noSeq.err)).toMatch(/^pumpwatch-trainer train: PW_SYNC_BAD_LINE: blob readings\/pump-noseq\/2026\/01\/01\/gw-1\/\S+\.jsonl\.gz line 3: "seq" is not an integer$/);
    for (const pump of ['pump-bad', 'pump-noseq']) expect(await readBest(container, pump), pump).toBeNull();
  });

  it('train-all fails those sources with it and exits 4, and trains the others', async () => {
    const res = await cli(['train-all', ...RANGE]);
    expect(res.code, res.err).toBe(EXIT.dataFailed);
    expect(res.err.split('\n')).toContain(`pump-bad: FAILED PW_SYNC_BAD_LINE: blob ${badBlob} line 2: not valid JSON`);
    expect(res.err).toMatch(/^pump-noseq: FAILED PW_SYNC_BAD_LINE: blob \S+ line 3: "seq" is not an integer$/m);
    expect(res.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 1 promoted, 0 kept, 0 skipped, 2 failed');
    expect((await readBest(container, 'pump-ok'))?.pointer.version).toMatch(/^20260101-/);
  });
});
