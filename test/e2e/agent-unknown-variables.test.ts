/**
 * A gateway under IoT Edge whose manifest misspells its settings: `PUMPWATCH_BLOB_CONNECTIONSTRING`
 * for the blob target, `PUMPWATCH_LOGLEVEL` for the log level. Both were ignored without a word:
 * `sync.state` "not configured" with no reason, no log line, /healthz ok, while the buffer filled
 * and evicted and nothing was ever uploaded. The agent (a real process, the module of the local
 * hub over TLS) now warns once for each unknown PUMPWATCH_* variable with the key it is nearest
 * to, never its value, says why nothing uploads in the log and in `/status` `sync.reason`, and
 * keeps running (a warning, not exit 2).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalHub } from '../support/local-hub.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

const SECRET_KEY = 'c2VjcmV0LWtleS1uZXZlci1sb2dnZWQ=';
const dir = mkdtempSync(join(tmpdir(), 'pw-unknown-vars-'));
let hub: LocalHub;
let agent: AgentProcess;

beforeAll(async () => {
  hub = await LocalHub.start();
  const connectionString = hub.addModule('gw-typo', 'pumpwatch');
  writeFileSync(join(dir, 'hub-ca.pem'), hub.ca);
  agent = await startAgentProcess({
    PUMPWATCH_DATA_DIR: join(dir, 'data'),
    PUMPWATCH_HUB: 'auto',
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_MODULE_CONNECTION_STRING: connectionString,
    EdgeModuleCACertificateFile: join(dir, 'hub-ca.pem'),
    PUMPWATCH_DEVICE_ID: 'gw-typo',
    PUMPWATCH_LOG_LEVEL: 'info',
    PUMPWATCH_BLOB_CONNECTIONSTRING: `DefaultEndpointsProtocol=https;AccountName=pumpfleet;AccountKey=${SECRET_KEY};EndpointSuffix=core.windows.net`,
    PUMPWATCH_LOGLEVEL: 'debug',
  });
  await agent.waitReady();
});

afterAll(async () => {
  agent?.proc.kill('SIGTERM');
  await agent?.exited;
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const logLines = (): Array<Record<string, unknown>> =>
  agent
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('an agent on IoT Edge with misspelt PUMPWATCH_* variables', () => {
  it('warns once for each with the key it is nearest to, never its value', () => {
    const warnings = logLines().filter((l) => l.code === 'PW_CONFIG_UNKNOWN_VARIABLE');
    expect(warnings.map((l) => [l.variable, l.nearest, l.msg])).toEqual([
      ['PUMPWATCH_BLOB_CONNECTIONSTRING', 'PUMPWATCH_BLOB_CONNECTION_STRING', 'PUMPWATCH_BLOB_CONNECTIONSTRING is not a setting of this agent and is ignored (a misspelling, or a setting of a newer version): did you mean PUMPWATCH_BLOB_CONNECTION_STRING?'],
      ['PUMPWATCH_LOGLEVEL', 'PUMPWATCH_LOG_LEVEL', 'PUMPWATCH_LOGLEVEL is not a setting of this agent and is ignored (a misspelling, or a setting of a newer version): did you mean PUMPWATCH_LOG_LEVEL?'],
    ]);
    expect(warnings.every((l) => l.level === 40)).toBe(true); // pino's warn
    expect(agent.output()).not.toContain(SECRET_KEY);
    expect(agent.output()).not.toContain('pumpfleet');
  });

  it('says in the log and in /status sync.reason that nothing is uploaded, naming the misspelt variable, and stays up', async () => {
    const notConfigured = logLines().filter((l) => l.code === 'PW_SYNC_NOT_CONFIGURED');
    expect(notConfigured).toHaveLength(1);
    const reason =
      'sync is not configured: no blob target is set on this IoT Edge gateway (PUMPWATCH_BLOB_CONNECTIONSTRING is set, but the agent reads PUMPWATCH_BLOB_CONNECTION_STRING), ' +
      'so readings stay in the buffer and are never uploaded (the oldest are evicted under PUMPWATCH_BUFFER_MAX_BYTES). ' +
      "Set PUMPWATCH_BLOB_SAS_URL or PUMPWATCH_BLOB_CONNECTION_STRING in the module's environment; PUMPWATCH_SYNC=off says this is intended, without this warning";
    expect(notConfigured[0]!.msg).toBe(reason);
    const status = (await (await fetch(`${agent.url}/status`)).json()) as { sync: { state: string; reason: string | null }; connectivity: { hub: string } };
    expect(status.sync).toMatchObject({ state: 'not configured', reason });
    // It is the module of the hub (IoT Edge is configured), and running: a warning, not exit 2.
    await vi.waitFor(async () => expect(((await (await fetch(`${agent.url}/status`)).json()) as typeof status).connectivity.hub).toBe('connected'), { timeout: 20_000, interval: 100 });
    expect((await fetch(`${agent.url}/healthz`)).status).toBe(200);
    expect(agent.proc.exitCode).toBeNull();
  });
});
