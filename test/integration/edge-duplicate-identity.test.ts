/**
 * Two agents under one module identity (a copied deployment, a container restarted while the old one
 * still runs, a cloned gateway image) against the local hub, which, like IoT Hub, closes the older
 * connection when a second one opens with the same client id. Each agent's connection takes over
 * the other's; without a backoff on such flaps they reconnected at once, thousands of times a
 * minute. The agents here run in this process, with their log lines captured.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-dup';
const MODULE = 'pumpwatch';
/** The fixed window over which connects are counted (not a timing assertion: the bound is wide). */
const WINDOW_MS = 20_000;
let hub: LocalHub;
const agents: TestAgent[] = [];

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** An agent as the module, logging at info into `lines`. */
async function agent(connectionString: string, lines: LogLine[]): Promise<TestAgent> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const t = await startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: connectionString, PUMPWATCH_DEVICE_ID: DEVICE },
    { hubCa: hub.ca, logger: createLogger('info', sink) },
  );
  agents.push(t);
  return t;
}

const connectedLines = (lines: LogLine[]) => lines.filter((l) => l.msg === 'IoT Edge client connected').length;
const flapWarnings = (lines: LogLine[]) => lines.filter((l) => l.level === 40 && /closed this module's connection/.test(l.msg));
const status = async (t: TestAgent) => (await (await fetch(`${t.url}/status`)).json()) as { connectivity: { hub: string } };

beforeAll(async () => {
  hub = await LocalHub.start();
});

afterAll(async () => {
  for (const t of agents) await t.stop().catch(() => undefined); // clients close before the broker, or the process hangs
  await hub?.stop();
});

describe('two agents under one module identity', () => {
  it('back off when the hub keeps closing their fresh connections, say why once, and connect for good once the other has gone', async () => {
    const connectionString = hub.addModule(DEVICE, MODULE);
    const aLines: LogLine[] = [];
    const bLines: LogLine[] = [];
    const a = await agent(connectionString, aLines);
    await vi.waitFor(async () => expect((await status(a)).connectivity.hub).toMatch(/^connected/), { timeout: 30_000, interval: 50 });
    const b = await agent(connectionString, bLines);

    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
    const connects = connectedLines(aLines) + connectedLines(bLines);
    console.log(`connects in ${WINDOW_MS / 1000} s: a ${connectedLines(aLines)}, b ${connectedLines(bLines)}; flap warnings a ${flapWarnings(aLines).length}, b ${flapWarnings(bLines).length}; log lines a ${aLines.length}, b ${bLines.length}`);
    // The backoff (1 s doubling, with jitter) allows about 6 connects per agent in 20 s; without it, hundreds.
    expect(connects).toBeGreaterThan(2);
    expect(connects).toBeLessThan(40);
    // Said at warn, with the likely cause, a few times at most: never once per flap.
    const warned = [...flapWarnings(aLines), ...flapWarnings(bLines)];
    expect(warned.length).toBeGreaterThan(0);
    expect(warned.length).toBeLessThanOrEqual(4);
    expect(warned[0]!.msg).toMatch(/another client is probably connected with the same identity/);
    // /status says why the agent waits and when it tries again; /healthz is degraded (200), naming the hub.
    // Polled: at a given instant both agents may be between a connect and its flap, neither waiting.
    await vi.waitFor(
      async () => {
        const states = await Promise.all([a, b].map(status));
        expect(states.map((s) => s.connectivity.hub).join('\n')).toMatch(/reconnecting: the hub closed this module's connection \d+ times? in a row .*; next attempt at \d{4}-/);
      },
      { timeout: 60_000, interval: 100 },
    );
    await vi.waitFor(
      async () => {
        const health = await Promise.all([a, b].map(async (t) => (await fetch(`${t.url}/healthz`)).json() as Promise<{ status: string; degraded: string[]; checks: Record<string, string> }>));
        const degraded = health.filter((h) => h.status === 'degraded' && h.degraded.includes('hub'));
        expect(degraded.length).toBeGreaterThan(0);
        expect(degraded[0]!.checks.hub).toMatch(/same identity/);
      },
      { timeout: 60_000, interval: 100 },
    );

    // The other one goes away: this one connects, stays connected, and reads its twin.
    await b.stop();
    agents.splice(agents.indexOf(b), 1);
    await vi.waitFor(async () => expect((await status(a)).connectivity.hub).toMatch(/^connected/), { timeout: 120_000, interval: 100 });
    const version = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 77 } });
    await vi.waitFor(() => expect((hub.reported(DEVICE, MODULE) as Record<string, any>).alerts).toMatchObject({ ac: 200, av: version }), { timeout: 120_000, interval: 100 });
    expect((await status(a)).connectivity.hub).toMatch(/^connected/);
  }, 300_000);
});
