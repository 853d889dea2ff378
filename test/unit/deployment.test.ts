/**
 * The Dockerfile and the IoT Edge deployment manifest, parsed: required parts present, the
 * container not running as root, and ports, volumes and settings consistent with the agent's
 * config defaults and with the input/output names the code uses.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, loadConfig, TWIN_SETTINGS } from '../../agent/config.js';
import { ALERTS_OUTPUT } from '../../agent/edge/alerts.js';
import { SECTION_NAMES, parseModels, parseSection } from '../../agent/edge/desired.js';
import { READINGS_INPUT } from '../../agent/edge/inputs.js';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../agent/node-flags.js';
import { packageRoot } from '../../agent/paths.js';

const root = packageRoot();

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions with continuation lines joined, each tagged with its stage (0-based). */
function dockerfile(): Instruction[] {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const out: Instruction[] = [];
  let stage = -1;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const [op, ...rest] = trimmed.split(/\s+/);
    if (op!.toUpperCase() === 'FROM') stage++;
    out.push({ op: op!.toUpperCase(), args: rest.join(' '), stage });
  }
  return out;
}

const instructions = dockerfile();
const finalStage = Math.max(...instructions.map((i) => i.stage));
const final = instructions.filter((i) => i.stage === finalStage);
const argsOf = (op: string, list = final) => list.filter((i) => i.op === op).map((i) => i.args);
const env: Record<string, string> = Object.fromEntries(
  argsOf('ENV').flatMap((a) => [...a.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);
const defaults = loadConfig({});

const manifest = JSON.parse(readFileSync(join(root, 'deployment', 'pumpwatch.deployment.template.json'), 'utf8'));
const content = manifest.modulesContent;
const agentDesired = content.$edgeAgent['properties.desired'];
const pumpwatch = agentDesired.modules.pumpwatch;
const createOptions = JSON.parse(pumpwatch.settings.createOptions);
const routes: Record<string, { route: string; priority: number; timeToLiveSecs: number }> = content.$edgeHub['properties.desired'].routes;

describe('Dockerfile', () => {
  it('builds in stages and runs on a slim Node LTS image', () => {
    const froms = argsOf('FROM', instructions);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms.at(-1)).toMatch(/^node:\$\{NODE_VERSION\}-[a-z]+-slim$/);
    const version = Number(/NODE_VERSION=(\d+)/.exec(argsOf('ARG', instructions).join(' '))?.[1]);
    expect(version % 2).toBe(0); // even majors are the LTS lines
    expect(version).toBeGreaterThanOrEqual(20);
  });

  it('installs production dependencies only with npm ci --omit=dev', () => {
    expect(argsOf('RUN', instructions).some((r) => /npm ci --omit=dev/.test(r))).toBe(true);
    expect(argsOf('COPY').some((c) => /--from=deps .*node_modules/.test(c))).toBe(true);
    // The native modules are rebuilt in that stage: onnxruntime-node's script must download nothing.
    const depsStage = instructions.find((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args))!.stage;
    expect(argsOf('ENV', instructions.filter((i) => i.stage === depsStage))).toContain('ONNXRUNTIME_NODE_INSTALL=skip');
  });

  it('runs as a user that is not root', () => {
    const user = argsOf('USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
  });

  it('keeps the data directory on a volume, where the agent is told to keep its data', () => {
    expect(JSON.parse(argsOf('VOLUME')[0]!)).toEqual([env.PUMPWATCH_DATA_DIR]);
    expect(argsOf('RUN').some((r) => r.includes(`chown node:node ${env.PUMPWATCH_DATA_DIR}`))).toBe(true);
  });

  it('exposes the status port the agent listens on, on all interfaces', () => {
    expect(argsOf('EXPOSE')).toEqual([String(defaults.httpPort)]);
    expect(env.PUMPWATCH_HTTP_PORT).toBe(String(defaults.httpPort));
    expect(env.PUMPWATCH_HTTP_HOST).toBe('0.0.0.0');
  });

  it('checks health on /healthz and starts node directly so it receives SIGTERM', () => {
    expect(argsOf('HEALTHCHECK')[0]).toMatch(/CMD .*\/healthz/);
    const entry = JSON.parse(argsOf('ENTRYPOINT')[0]!) as string[];
    const bin = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).bin['pumpwatch-agent'];
    expect(entry).toEqual(['node', ...AGENT_NODE_FLAGS, bin]);
    expect(argsOf('STOPSIGNAL')).toEqual(['SIGTERM']);
  });

  it('starts the agent with its node flags and environment from the Dockerfile and the bin, its flags from npm start', () => {
    expect(AGENT_NODE_FLAGS.length).toBeGreaterThan(0);
    const entry = JSON.parse(argsOf('ENTRYPOINT')[0]!) as string[];
    expect(entry.slice(1, -1)).toEqual([...AGENT_NODE_FLAGS]);
    for (const [name, value] of Object.entries(AGENT_ENV)) expect(env[name], name).toBe(value);
    const shebang = readFileSync(join(root, 'agent', 'cli.ts'), 'utf8').split('\n')[0];
    const assignments = Object.entries(AGENT_ENV).map(([name, value]) => `${name}=${value} `).join('');
    expect(shebang).toBe(`#!/usr/bin/env -S ${assignments}node ${AGENT_NODE_FLAGS.join(' ')}`);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${AGENT_NODE_FLAGS.join(' ')} ${pkg.bin['pumpwatch-agent']}`);
  });

  it('copies only files that exist, and the context leaves out node_modules, data and .git', () => {
    for (const copy of argsOf('COPY', instructions).filter((c) => !c.startsWith('--from'))) {
      for (const src of copy.split(/\s+/).slice(0, -1)) expect(existsSync(join(root, src)), src).toBe(true);
    }
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'data', '.git', 'dist']));
  });
});

describe('IoT Edge deployment manifest', () => {
  it('has the edgeAgent and edgeHub system modules and the pumpwatch module with its image', () => {
    expect(agentDesired.systemModules.edgeAgent.settings.image).toMatch(/azureiotedge-agent:1\.\d+/);
    expect(agentDesired.systemModules.edgeHub.settings.image).toMatch(/azureiotedge-hub:1\.\d+/);
    expect(pumpwatch).toMatchObject({ type: 'docker', status: 'running', restartPolicy: 'always' });
    expect(pumpwatch.settings.image).toMatch(/\/pumpwatch:\$\{PUMPWATCH_VERSION\}$/);
  });

  it('binds the status port and mounts the data volume where the image expects them', () => {
    const port = `${defaults.httpPort}/tcp`;
    expect(Object.keys(createOptions.HostConfig.PortBindings)).toEqual([port]);
    expect(Object.keys(createOptions.ExposedPorts)).toEqual([port]);
    const [volume, target] = (createOptions.HostConfig.Binds[0] as string).split(':');
    expect(volume).toMatch(/^[a-z][a-z0-9-]+$/); // a named volume, not a host path
    expect(target).toBe(JSON.parse(argsOf('VOLUME')[0]!)[0]);
    expect(pumpwatch.env.PUMPWATCH_DATA_DIR.value).toBe(target);
    expect(pumpwatch.env.PUMPWATCH_HTTP_PORT.value).toBe(String(defaults.httpPort));
  });

  it('routes a sensor module to the readings input, and alerts upstream first', () => {
    const readings = Object.values(routes).find((r) => r.route.includes(`/modules/pumpwatch/inputs/${READINGS_INPUT}`));
    const alerts = Object.values(routes).find((r) => r.route.startsWith(`FROM /messages/modules/pumpwatch/outputs/${ALERTS_OUTPUT} INTO $upstream`));
    expect(readings?.route).toMatch(/^FROM \/messages\/modules\/pumpsensor\/outputs\/\S+ INTO BrokeredEndpoint\("\/modules\/pumpwatch\/inputs\/readings"\)$/);
    expect(agentDesired.modules.pumpsensor).toBeDefined();
    expect(alerts!.priority).toBeLessThan(readings!.priority); // 0 is the highest priority
    expect(alerts!.timeToLiveSecs).toBeGreaterThan(0);
    expect(content.$edgeHub['properties.desired'].storeAndForwardConfiguration.timeToLiveSecs).toBeGreaterThanOrEqual(alerts!.timeToLiveSecs);
  });

  it('gives the module desired properties the agent accepts, at the config defaults', () => {
    const desired = content.pumpwatch['properties.desired'];
    expect(parseModels(desired.models)).toEqual({ entries: {}, invalid: {} });
    for (const name of SECTION_NAMES) {
      const parsed = parseSection(name, desired[name]);
      expect(parsed, name).not.toHaveProperty('error');
      for (const [key, value] of Object.entries((parsed as { values: Record<string, unknown> }).values)) {
        expect(value, `${name} → ${key}`).toEqual(defaults[key as keyof typeof defaults]);
      }
    }
    expect(Object.keys(TWIN_SETTINGS).sort()).toEqual(Object.keys(desired).filter((k) => k !== 'models').sort());
    // Every field, so that an operator sees in the manifest all that the twin can change.
    for (const name of SECTION_NAMES) expect(Object.keys(desired[name]).sort(), name).toEqual(Object.keys(TWIN_SETTINGS[name]).sort());
  });

  it('maps every twin setting field to its own config key, and refuses a field it does not know', () => {
    const keys = SECTION_NAMES.flatMap((name) => Object.values(TWIN_SETTINGS[name]) as string[]);
    expect(new Set(keys).size).toBe(keys.length);
    for (const key of keys) expect(Object.keys(CONFIG_KEYS)).toContain(key);
    expect(parseSection('ingest', { maxPastSeconds: 3600 })).toEqual({ values: { maxPastSeconds: 3600 } });
    expect(parseSection('modelDownloads', { timeoutSeconds: 30 })).toEqual({ values: { modelDownloadTimeoutSeconds: 30 } });
    expect(parseSection('sync', { backoffMaxSeconds: 10 })).toEqual({ values: { syncBackoffMaxSeconds: 10 } });
    expect(parseSection('ingest', { maxPastSeconds: -1 })).toEqual({ error: expect.stringMatching(/^ingest\.maxPastSeconds=-1: /) });
    expect(parseSection('sync', { logLevel: 'debug' })).toEqual({ error: expect.stringMatching(/^sync\.logLevel: unknown setting \(known: intervalSeconds, .*slowRetrySeconds\)$/) });
  });

  it('holds no secret: credentials and tokens are placeholders', () => {
    const text = JSON.stringify(manifest);
    expect(text).not.toMatch(/SharedAccessKey=|sig=/);
    for (const v of Object.values(pumpwatch.env) as Array<{ value: string }>) {
      const secret = Object.values(CONFIG_KEYS).some((k) => 'secret' in k && k.secret && pumpwatch.env[k.env] === v);
      if (secret) expect(v.value).toMatch(/^\$\{[A-Z_]+\}$/);
    }
  });
});

describe('deployment/render.sh', () => {
  const vars = {
    REGISTRY_ADDRESS: 'myacr.azurecr.io',
    REGISTRY_USERNAME: 'myacr',
    REGISTRY_PASSWORD: 'pw-0123',
    PUMPWATCH_VERSION: '0.1.0',
    SENSOR_IMAGE: 'myacr.azurecr.io/pumpsensor:1.0',
    PUMPWATCH_BLOB_SAS_URL: 'https://account.blob.core.windows.net/pumpwatch?sv=2025&sig=abc%2B',
    PUMPWATCH_STATUS_TOKEN: 'tok-456',
  };
  const render = (env: Record<string, string>) =>
    spawnSync('bash', [join(root, 'deployment', 'render.sh')], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });

  it('fills in the variables and leaves IoT Edge\'s own $-names alone', () => {
    const r = render(vars);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = JSON.parse(r.stdout);
    const agent = m.modulesContent.$edgeAgent['properties.desired'];
    expect(agent.modules.pumpwatch.env.PUMPWATCH_BLOB_SAS_URL.value).toBe(vars.PUMPWATCH_BLOB_SAS_URL);
    expect(agent.modules.pumpwatch.settings.image).toBe('myacr.azurecr.io/pumpwatch:0.1.0');
    expect(JSON.stringify(m.modulesContent.$edgeHub['properties.desired'].routes)).toContain('INTO $upstream');
    expect(r.stdout).not.toMatch(/\$\{[A-Z_]+\}/);
  });

  it('refuses a missing value, and a value a JSON string cannot hold, without printing it', () => {
    const { PUMPWATCH_STATUS_TOKEN: _token, ...missing } = vars;
    expect(render(missing)).toMatchObject({ status: 2, stdout: '', stderr: 'render.sh: PUMPWATCH_STATUS_TOKEN is not set\n' });
    for (const bad of ['se"cret', 'se\\cret', 'se\ncret']) {
      const r = render({ ...vars, REGISTRY_PASSWORD: bad });
      expect(r.status, JSON.stringify(bad)).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^render\.sh: REGISTRY_PASSWORD contains a ", a backslash or a control character/);
      expect(r.stderr).not.toContain('cret');
    }
  });
});
