/**
 * A schema migration at open says so in the log: a large buffer written by an older agent took
 * seconds before `/healthz` answered, with no line about why. The real agent on a schema-8 file
 * (built with the shipped steps, as the schema-8 agent left it), then on the migrated file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { MIGRATIONS } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { startTestAgent } from '../support/agent.js';
import { oldSchemaFile } from '../support/schema9.js';

const T0 = Date.UTC(2026, 11, 5, 9);
const ROWS: PredictionRow[] = Array.from({ length: 20 }, (_, i) => ({
  pumpId: 'pump-1', ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values: { Pressure: i }, score: 0.1, anomaly: false, modelVersion: 'default-1', imputed: false, unscoredReason: null,
}));
const CURRENT = MIGRATIONS.length;

interface Line { level: number; msg: string; component?: string; event?: string; fromVersion?: number; toVersion?: number; ms?: number }

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-migration-log-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** Starts and stops the agent on `dir`'s buffer; the lines it logged about a migration. */
async function migrationLines(): Promise<Line[]> {
  const lines: Line[] = [];
  const t = await startTestAgent({ PUMPWATCH_DATA_DIR: dir }, { logger: createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as Line) }) });
  await t.stop();
  return lines.filter((l) => l.event === 'buffer-migration');
}

describe('the log of a buffer schema migration', () => {
  it('says once, at info, from which schema to which and how long it took, when the agent opens an older file; nothing on a current one', async () => {
    oldSchemaFile(join(dir, 'buffer.sqlite'), 8, ROWS);
    const first = await migrationLines();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ level: 30, component: 'buffer', fromVersion: 8, toVersion: CURRENT });
    expect(first[0]!.ms).toBeTypeOf('number');
    expect(first[0]!.msg).toContain(`from schema 8 to ${CURRENT} in `);
    expect(await migrationLines()).toEqual([]); // the same file, now current
  });

  it('says before it starts on a large file why nothing answers yet, then when it is done', () => {
    const path = join(dir, 'buffer.sqlite');
    oldSchemaFile(path, 8, ROWS);
    const told: Array<{ message: string; fields: object }> = [];
    // Every file counts as large here: the default (64 MiB) would take a file of that size to show.
    const store = new BufferStore({ path, maxBytes: 2 ** 30, announceMigrationAboveBytes: 0, onMigration: (message, fields) => void told.push({ message, fields }) });
    store.open();
    store.close();
    expect(told.map((t) => t.fields)).toEqual([
      { fromVersion: 8, toVersion: CURRENT, fileBytes: expect.any(Number) },
      { fromVersion: 8, toVersion: CURRENT, ms: expect.any(Number) },
    ]);
    expect(told[0]!.message).toMatch(new RegExp(`^migrating the buffer .* from schema 8 to ${CURRENT}, .*: the agent starts once it is done$`));
  });

  it('says nothing when it creates a new file', async () => {
    expect(await migrationLines()).toEqual([]);
  });
});
