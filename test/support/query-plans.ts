import type Database from 'better-sqlite3';
import { vi } from 'vitest';

/** The query plan (EXPLAIN QUERY PLAN, one line a step) of every statement `run` runs on `db`, with the arguments it ran with. */
export function queryPlans(db: Database.Database, run: () => unknown): string[] {
  const original = db.prepare.bind(db);
  const runs: Array<{ sql: string; args: unknown[] }> = [];
  const spy = vi.spyOn(db, 'prepare').mockImplementation(((sql: string) => {
    const stmt = original(sql);
    for (const k of ['all', 'get'] as const) {
      const fn = stmt[k].bind(stmt) as (...a: unknown[]) => unknown;
      (stmt as unknown as Record<string, unknown>)[k] = (...args: unknown[]) => {
        runs.push({ sql, args });
        return fn(...args);
      };
    }
    return stmt;
  }) as typeof db.prepare);
  try {
    run();
  } finally {
    spy.mockRestore();
  }
  return runs.map(({ sql, args }) => (original(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join('\n'));
}
