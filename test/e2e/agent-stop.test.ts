/**
 * How the agent process ends on SIGTERM when things around it are not ready: a signal during
 * start-up, before the agent's own handlers exist (as PID 1 in a container an unhandled SIGTERM is
 * ignored until IoT Edge's SIGKILL), and a hub that accepts the connection and never answers.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeModel } from '../support/models.js';
import { startAgentProcess } from '../support/process.js';
import { moduleLoadHold, startupHold } from '../support/startup-hold.js';

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-stop-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, makeModel({ version: 'stop-1' }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

describe('SIGTERM to the agent process', () => {
  it('exits 0, having opened nothing, when it comes while the modules load', async () => {
    const hold = startupHold(dir);
    const data = join(dir, 'data-early');
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: data, PUMPWATCH_DEFAULT_MODEL: model, ...hold.env }, undefined, { nodeArgs: hold.nodeArgs });
    try {
      await vi.waitFor(() => expect(existsSync(hold.held)).toBe(true), { timeout: 30_000, interval: 20 });
      agent.proc.kill('SIGTERM');
    } finally {
      hold.release();
    }
    expect(await agent.exited).toBe(0); // not ended by the signal itself
    expect(agent.output()).toContain('pumpwatch-agent: SIGTERM during start-up, before anything was opened: exiting');
    expect(existsSync(join(data, 'buffer.sqlite'))).toBe(false);
    // and onnxruntime was loaded with its telemetry already off (inference/ort-telemetry.ts, imported first)
    expect(JSON.parse(readFileSync(hold.held, 'utf8'))).toEqual({ ORT_DISABLE_TELEMETRY: '1' });
  });

  it('exits 0 when it comes while node loads the agent\'s modules, before the bulk of them is linked or run', async () => {
    // Held where agent/main.js (onnxruntime, SQLite, the SDKs behind it) is loaded: with main.js in
    // the entry point's static graph, no module had run yet and the signal ended the process (143).
    const hold = moduleLoadHold(dir, '/dist/agent/main.js');
    const data = join(dir, 'data-loading');
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: data, PUMPWATCH_DEFAULT_MODEL: model }, undefined, { nodeArgs: hold.nodeArgs });
    try {
      await vi.waitFor(() => expect(existsSync(hold.held)).toBe(true), { timeout: 30_000, interval: 20 });
      agent.proc.kill('SIGTERM');
    } finally {
      hold.release();
    }
    expect(await agent.exited).toBe(0);
    expect(agent.output()).toContain('pumpwatch-agent: SIGTERM during start-up, before anything was opened: exiting');
    expect(existsSync(join(data, 'buffer.sqlite'))).toBe(false);
  });

  it('stops within the grace, the buffer closed, when the hub accepts the connection and never answers', async () => {
    // A tarpit: up at the TCP level, silent (a frozen broker, a half-open link).
    const held: Socket[] = [];
    const tarpit = createServer((socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => tarpit.listen(0, '127.0.0.1', resolve));
    const port = (tarpit.address() as AddressInfo).port;
    const data = join(dir, 'data-tarpit');
    const key = Buffer.alloc(32, 7).toString('base64');
    try {
      const agent = await startAgentProcess({
        PUMPWATCH_DATA_DIR: data,
        PUMPWATCH_DEFAULT_MODEL: model,
        PUMPWATCH_HUB: 'auto',
        PUMPWATCH_DEVICE_ID: 'gw-tarpit',
        PUMPWATCH_MODULE_CONNECTION_STRING: `HostName=hub.example;DeviceId=gw-tarpit;ModuleId=pumpwatch;SharedAccessKey=${key};GatewayHostName=127.0.0.1:${port}`,
        PUMPWATCH_LOG_LEVEL: 'info',
      });
      await agent.waitReady();
      const res = await fetch(`${agent.url}/readings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 0.4 } }),
      });
      expect(res.status).toBe(202);
      await vi.waitFor(() => expect(held.length).toBeGreaterThan(0), { timeout: 30_000, interval: 20 }); // the client is connecting into it
      agent.proc.kill('SIGTERM');

      expect(await agent.exited).toBe(0);
      expect(agent.output()).not.toContain('clean stop took longer');
      expect(agent.output()).toContain('IoT Edge client still connecting (the hub does not answer): abandoned');
      // Under IoT Edge stdout is the JSON log: the start and the clean stop are events in it, and the
      // line for a person at a terminal is not written (it broke JSON log shippers; a clean stop said nothing).
      const events = agent.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(agent.output()).not.toContain('PumpWatch agent running');
      expect(events.find((e) => e.msg === 'running')).toMatchObject({ component: 'agent', device: 'gw-tarpit', statusPage: agent.url + '/' });
      expect(events.find((e) => e.msg === 'stopping')).toMatchObject({ component: 'agent', signal: 'SIGTERM' });
      expect(events.find((e) => e.msg === 'stopped')).toMatchObject({ component: 'agent', signal: 'SIGTERM', exitCode: 0 });
      // Exit 0 without the 10 s timeout: every step of the stop after the hub's ran, the buffer's close
      // among them: the WAL checkpointed and deleted (the main connection closes last, after the
      // checkpoint thread's, which close() waits for), and the reading is in the file.
      expect(existsSync(join(data, 'buffer.sqlite-wal'))).toBe(false);
      const db = new Database(join(data, 'buffer.sqlite'), { readonly: true });
      try {
        expect((db.prepare("SELECT count(*) n FROM readings WHERE pump_id = 'pump-1'").get() as { n: number }).n).toBe(1);
      } finally {
        db.close();
      }
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => tarpit.close(() => resolve()));
    }
  });
});
