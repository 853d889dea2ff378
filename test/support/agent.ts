/**
 * Runs a real agent in this process for integration tests: a temp data dir, a real SQLite file,
 * a real onnxruntime session on a trainer-made model, the status server on a free port.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agent/main.js';
import { loadConfig, type Config } from '../../agent/config.js';
import { createLogger, type Logger } from '../../agent/logger.js';
import { makeModel } from './models.js';

export interface TestAgent {
  agent: Agent;
  dir: string;
  url: string;
  stop: () => Promise<void>;
}

/** A test agent's configuration: `dataDir`, any free port, no simulator, sync or hub, no log; `env` overrides. */
export function testAgentConfig(dataDir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    PUMPWATCH_DATA_DIR: dataDir,
    PUMPWATCH_HTTP_PORT: '0',
    PUMPWATCH_SIMULATE: '0',
    PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off',
    PUMPWATCH_LOG_LEVEL: 'silent',
    ...env,
  });
}

/**
 * `logger`: where the agent logs (default: its configured level, none in tests).
 * `hubCa`: the local hub's CA certificate (`hub.ca`), written into the agent's folder and given to
 * its IoT Edge client as EdgeModuleCACertificateFile (the hub's TLS is self-signed).
 */
export async function startTestAgent(env: Record<string, string> = {}, opts: { model?: Uint8Array; clock?: () => number; monotonic?: () => number; hubCa?: string; logger?: Logger } = {}): Promise<TestAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-test-'));
  const modelPath = join(dir, 'default-model.onnx');
  writeFileSync(modelPath, opts.model ?? makeModel());
  if (opts.hubCa !== undefined) {
    writeFileSync(join(dir, 'hub-ca.pem'), opts.hubCa);
    env = { EdgeModuleCACertificateFile: join(dir, 'hub-ca.pem'), ...env };
  }
  const config = testAgentConfig(join(dir, 'data'), env);
  const agent = new Agent({ config, logger: opts.logger ?? createLogger(config.logLevel), defaultModelPath: modelPath, clock: opts.clock, monotonic: opts.monotonic });
  await agent.start();
  const addr = agent.httpAddress()!;
  return {
    agent,
    dir,
    url: `${addr.tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`,
    stop: async () => {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    },
  };
}

/**
 * A test agent that is the module of `connectionString` (from `hub.addModule`) on the local hub,
 * as `deviceId`, trusting the hub's CA; `env` adds to its configuration.
 */
export function startHubAgent(hub: { ca: string }, connectionString: string, deviceId: string, env: Record<string, string> = {}, opts: { monotonic?: () => number } = {}): Promise<TestAgent> {
  return startTestAgent({ PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: connectionString, PUMPWATCH_DEVICE_ID: deviceId, ...env }, { hubCa: hub.ca, ...opts });
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}
