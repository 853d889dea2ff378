/**
 * The scheduler across the wall-clock steps of a gateway that booted at 1970 or with the time of
 * its last shutdown, then had NTP set the clock: node-cron 4's own heartbeat walks every slot a
 * forward step skipped, synchronously (minutes for a few years, growing memory), so it must never
 * run. The event loop stays responsive and the jobs keep their pace on the monotonic clock. Date is
 * vitest's fake Date (it keeps advancing with real time); timers stay real, as on a gateway, where a
 * clock step does not move setTimeout.
 */
import cron from 'node-cron';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { Scheduler } from '../../agent/scheduler.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const DAY = 86_400_000;

/**
 * The longest the event loop went without running a 50-ms interval during `ms` (monotonic), and the
 * runs of the job meanwhile.
 */
async function watchLoop(ms: number): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const t = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 50);
  await sleep(ms);
  clearInterval(t);
  return Math.max(longest, performance.now() - last);
}

describe('Scheduler and a wall clock stepped by days or years', () => {
  let scheduler: Scheduler | null = null;
  afterEach(async () => {
    await scheduler?.stop();
    scheduler = null;
    vi.useRealTimers();
  });

  /** A scheduler with a job every second and one every 2 s whose clock check comes after node-cron's next heartbeat would. */
  async function started(options: { clockCheckMs?: number; replanMs?: number } = {}): Promise<{ runs: () => number; steps: () => Array<{ msg: string; stepSeconds: number }> }> {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const logs: string[] = [];
    scheduler = new Scheduler(createLogger('debug', { write: (line: string) => logs.push(line) }), { clockCheckMs: 3_000, ...options });
    let n = 0;
    scheduler.every('tick', '* * * * * *', () => {
      n++;
    });
    scheduler.every('every-2-s', '*/2 * * * * *', () => undefined);
    scheduler.start();
    await vi.waitFor(() => expect(n).toBeGreaterThanOrEqual(1), { timeout: 3_000 });
    return {
      runs: () => n,
      steps: () => logs.map((l) => JSON.parse(l) as { msg: string; stepSeconds: number }).filter((l) => l.msg.includes('the system clock stepped')),
    };
  }

  it('never starts node-cron\'s own heartbeat (it would walk every skipped slot), and stays responsive with its jobs on pace after a step of 3 years', async () => {
    const s = await started();
    const heard: number[] = [];
    scheduler!.onClockStep((stepMs) => heard.push(stepMs)); // the agent records it for retention
    // node-cron plans nothing itself: its tasks only answer when the pattern next matches.
    const tasks = [...cron.getTasks().values()];
    expect(tasks.length).toBeGreaterThanOrEqual(2);
    for (const task of tasks) expect(task.getStatus()).toBe('stopped');
    vi.setSystemTime(Date.now() + 3 * 365 * DAY);
    const before = s.runs();
    const longest = await watchLoop(4_000); // before: the loop held from the next heartbeat on, for good
    expect(longest).toBeLessThan(1_000);
    expect(s.runs() - before).toBeGreaterThanOrEqual(3);
    // (vitest's fake Date advances by 20 ms per tick of an interval, so it falls a little behind real time)
    expect(s.steps()).toEqual([expect.objectContaining({ msg: 'the system clock stepped forward by 26280.0 h; scheduled jobs restarted from the new time', stepSeconds: expect.closeTo(94_608_000, -1) as number })]);
    expect(heard).toEqual([expect.closeTo(94_608_000_000, -4) as number]);
  });

  it('stays responsive with its jobs on pace after a step of one day forward (the time of the last shutdown)', async () => {
    const s = await started();
    vi.setSystemTime(Date.now() + DAY);
    const before = s.runs();
    const longest = await watchLoop(4_000); // before: the loop held ~20 s walking 86 400 slots
    expect(longest).toBeLessThan(1_000);
    expect(s.runs() - before).toBeGreaterThanOrEqual(3);
    expect(s.steps()).toHaveLength(1);
  });

  it('keeps its jobs on pace after a step of 2 h back, before its clock check notices', async () => {
    const s = await started({ clockCheckMs: 6_000 });
    vi.setSystemTime(Date.now() - 2 * 3_600_000);
    const before = s.runs();
    // Two runs (about 2 s), waited for rather than slept on, and the clock check (at 6 s) not yet come:
    // before, none ran until the check restarted the jobs.
    await vi.waitFor(() => expect(s.runs() - before).toBeGreaterThanOrEqual(2), { timeout: 5_500, interval: 50 });
    expect(s.steps()).toHaveLength(0);
    await vi.waitFor(() => expect(s.steps()).toEqual([expect.objectContaining({ msg: 'the system clock stepped back by 120 min; scheduled jobs restarted from the new time' })]), { timeout: 6_000 });
  });

  it('tells each comparison of the clocks (at start, then each check) with the step it noticed, so a listener can note what came before a step', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    scheduler = new Scheduler(createLogger('debug', { write: () => undefined }), { clockCheckMs: 300 });
    const checks: Array<number | null> = [];
    // Recorded here and asserted after: Scheduler.notifyCheck catches a listener's error and logs it.
    const wallSkews: number[] = [];
    scheduler.onClockCheck(({ stepMs, wallNow }) => {
      wallSkews.push(Math.abs(wallNow - Date.now()));
      checks.push(stepMs);
    });
    scheduler.start();
    expect(checks).toEqual([null]);
    await vi.waitFor(() => expect(checks.length).toBeGreaterThanOrEqual(2), { timeout: 3_000, interval: 20 });
    vi.setSystemTime(Date.now() + DAY);
    await vi.waitFor(() => expect(checks.some((c) => c !== null)).toBe(true), { timeout: 3_000, interval: 20 });
    await sleep(400);
    expect(checks.filter((c) => c !== null)).toEqual([expect.closeTo(DAY, -3) as number]);
    expect(checks.at(-1)).toBeNull(); // the checks after it: no step
    expect(wallSkews.filter((skew) => skew >= 50)).toEqual([]); // the wall clock of each check, read in its turn
  });

  it('runs an hourly job at the new time\'s hour within the re-plan bound after a step back, without waiting for the clock check', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: new Date('2026-12-05T13:00:01Z') });
    scheduler = new Scheduler(createLogger('debug', { write: () => undefined }), { clockCheckMs: 60_000, replanMs: 300 });
    let runs = 0;
    scheduler.every('hourly', '0 0 * * * *', () => {
      runs++;
    });
    scheduler.start(); // next run 14:00
    await sleep(500);
    expect(runs).toBe(0);
    vi.setSystemTime(new Date('2026-12-05T12:59:58.500Z')); // NTP: the clock was an hour and 2.5 s ahead
    await vi.waitFor(() => expect(runs).toBe(1), { timeout: 4_000, interval: 50 });
    expect(new Date().getUTCHours()).toBe(13);
  });
});
