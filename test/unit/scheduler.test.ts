/**
 * The scheduler when the gateway's wall clock steps (NTP correcting a clock that booted wrong):
 * the cron patterns match the wall clock, so the jobs must be re-planned from the new time. Date is
 * stepped with vitest's fake Date that keeps advancing with real time; timers stay real, as on a
 * gateway, where a clock step does not move setTimeout.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { Scheduler } from '../../agent/scheduler.js';

function setup(): { scheduler: Scheduler; runs: () => number; logs: string[] } {
  const logs: string[] = [];
  const scheduler = new Scheduler(createLogger('debug', { write: (line: string) => logs.push(line) }), { clockCheckMs: 100 });
  let n = 0;
  scheduler.every('tick', '* * * * * *', () => {
    n++;
  });
  return { scheduler, runs: () => n, logs };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Scheduler and a stepping wall clock', () => {
  let scheduler: Scheduler | null = null;
  afterEach(async () => {
    await scheduler?.stop();
    scheduler = null;
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('keeps running its jobs after the clock steps back an hour, and says so once', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const s = setup();
    scheduler = s.scheduler;
    scheduler.start();
    await vi.waitFor(() => expect(s.runs()).toBeGreaterThanOrEqual(1), { timeout: 3_000 });
    vi.setSystemTime(Date.now() - 3_600_000);
    const before = s.runs();
    // Waited for, not slept on: two runs come within about 2 s, later on a loaded machine; node-cron
    // alone would run none for an hour.
    await vi.waitFor(() => expect(s.runs() - before).toBeGreaterThanOrEqual(2), { timeout: 15_000 });
    const steps = s.logs.map((l) => JSON.parse(l) as { msg: string; stepSeconds?: number }).filter((l) => l.msg.includes('the system clock stepped'));
    expect(steps).toHaveLength(1);
    expect(steps[0]).toMatchObject({ msg: 'the system clock stepped back by 60 min; scheduled jobs restarted from the new time', stepSeconds: -3600 });
  });

  it('says in one warning that runs were missed when the event loop was held up, without a clock step', async () => {
    const printed = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const s = setup();
    scheduler = s.scheduler;
    scheduler.start();
    await vi.waitFor(() => expect(s.runs()).toBeGreaterThanOrEqual(1), { timeout: 3_000 });
    const until = Date.now() + 3_500;
    while (Date.now() < until); // a long synchronous stall
    await vi.waitFor(() => expect(s.logs.some((l) => l.includes('scheduled run(s) missed'))).toBe(true), { timeout: 3_000 });
    const line = s.logs.map((l) => JSON.parse(l) as { msg: string; missedRuns?: number }).find((l) => l.msg.includes('scheduled run(s) missed'))!;
    expect(line.msg).toMatch(/^\d+ scheduled run\(s\) missed: the event loop was held up/);
    expect(line.missedRuns).toBeGreaterThan(0);
    expect(s.logs.some((l) => l.includes('the system clock stepped'))).toBe(false);
    expect(printed).not.toHaveBeenCalled();
  });

  it('counts the runs a forward step skipped in its one log line instead of printing each on stdout', async () => {
    const printed = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const s = setup();
    scheduler = s.scheduler;
    scheduler.start();
    await vi.waitFor(() => expect(s.runs()).toBeGreaterThanOrEqual(1), { timeout: 3_000 });
    vi.setSystemTime(Date.now() + 600_000);
    const before = s.runs();
    await vi.waitFor(() => expect(s.runs() - before).toBeGreaterThanOrEqual(1), { timeout: 15_000 });
    expect(printed).not.toHaveBeenCalled();
    const step = s.logs.map((l) => JSON.parse(l) as { msg: string; missedRuns?: number }).find((l) => l.msg.includes('the system clock stepped'));
    expect(step?.msg).toBe('the system clock stepped forward by 10 min; scheduled jobs restarted from the new time');
    expect(step?.missedRuns).toBe(0); // a step skips no run: only a held event loop misses some
  });
});

describe('Scheduler and a job that does not finish', () => {
  let scheduler: Scheduler | null = null;
  afterEach(async () => {
    await scheduler?.stop();
    scheduler = null;
    vi.restoreAllMocks();
  });

  it('skips the runs due while a job still runs, writing nothing on stdout or stderr', async () => {
    const printed = [vi.spyOn(console, 'warn'), vi.spyOn(console, 'info'), vi.spyOn(console, 'error'), vi.spyOn(console, 'log')].map((s) => s.mockImplementation(() => undefined));
    const logs: string[] = [];
    scheduler = new Scheduler(createLogger('info', { write: (line: string) => logs.push(line) }));
    let started = 0;
    let release = (): void => undefined;
    scheduler.every('slow', '* * * * * *', () => {
      started++;
      return new Promise<void>((r) => (release = r));
    });
    scheduler.start();
    await sleep(3_500); // three runs due, the first still running
    release();
    expect(started).toBe(1);
    for (const p of printed) expect(p).not.toHaveBeenCalled();
    expect(logs).toEqual([]);
  });

  it('stops without waiting any longer than its bound for a job that hangs, and names the job', async () => {
    const logs: string[] = [];
    const s = new Scheduler(createLogger('info', { write: (line: string) => logs.push(line) }), { stopWaitMs: 200 });
    let running = false;
    s.every('system-health', '* * * * * *', () => {
      running = true;
      return new Promise<void>(() => undefined); // a sample stuck on the OS: never settles
    });
    s.every('quick', '* * * * * *', () => undefined);
    s.start();
    await vi.waitFor(() => expect(running).toBe(true), { timeout: 3_000 });
    await s.stop(); // before: waited for the job forever (the test timed out)
    const line = logs.map((l) => JSON.parse(l) as { msg: string; jobs?: string[] }).find((l) => l.msg.startsWith('stopped without waiting'));
    expect(line).toMatchObject({ jobs: ['system-health'], msg: 'stopped without waiting any longer for system-health (still running after 200 ms)' });
  });
});
