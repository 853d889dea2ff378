/**
 * The Dockerfile and the IoT Edge deployment manifest, parsed: required parts present, the
 * container not running as root, and ports, volumes and settings consistent with the agent's
 * config defaults and with the input/output names the code uses.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, loadConfig, TWIN_SETTINGS } from '../../agent/config.js';
import { ALERTS_OUTPUT } from '../../agent/edge/alerts.js';
import { SECTION_NAMES, parseSection } from '../../agent/edge/desired.js';
import { READINGS_INPUT } from '../../agent/edge/inputs.js';
import { STATUS_TOKEN_MIN_LENGTH } from '../../agent/http/auth.js';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../agent/node-flags.js';
import { packageRoot } from '../../agent/paths.js';
import { DEFAULT_WITHIN_HOURS, refreshUrlsCommand } from '../../trainer/commands/refresh-urls.js';
import { parseShard, trainAllCommand } from '../../trainer/commands/train-all.js';
import { DEFAULT_SAS_HOURS } from '../../trainer/deploy/sas.js';
import { EXIT, REPEATING_CODES } from '../../trainer/errors.js';

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

  it('keeps only the native binaries of the image\'s platform (the deps stage\'s prune, run on a mock tree)', () => {
    const depsStage = instructions.find((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args))!.stage;
    const prune = instructions.find((i) => i.stage === depsStage && i.op === 'RUN' && i.args.includes('onnxruntime-node/bin'));
    expect(prune, 'a RUN in the deps stage that prunes node_modules/onnxruntime-node/bin').toBeDefined();
    const here = `${process.platform}/${process.arch}`;
    const platforms = [...new Set(['linux/x64', 'linux/arm64', 'darwin/x64', 'darwin/arm64', 'win32/x64', 'win32/arm64', here])];
    const files = [
      ...platforms.map((p) => `onnxruntime-node/bin/napi-v6/${p}/onnxruntime_binding.node`),
      'onnxruntime-node/dist/index.js',
      'better-sqlite3/package.json',
      'better-sqlite3/lib/index.js',
      'better-sqlite3/src/better_sqlite3.cpp',
      'better-sqlite3/deps/sqlite3/sqlite3.c',
      'better-sqlite3/build/Release/better_sqlite3.node',
      'better-sqlite3/build/Release/test_extension.node',
      'better-sqlite3/build/Release/obj.target/better_sqlite3/src/better_sqlite3.o',
      'better-sqlite3/build/deps/sqlite3.a',
    ];
    const dir = mkdtempSync(join(tmpdir(), 'pw-prune-'));
    try {
      for (const f of files) {
        mkdirSync(dirname(join(dir, 'node_modules', f)), { recursive: true });
        writeFileSync(join(dir, 'node_modules', f), f);
      }
      // Docker runs a shell-form RUN with /bin/sh -c (dash on Debian).
      const r = spawnSync('/bin/sh', ['-c', prune!.args], { cwd: dir, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const walk = (d: string): string[] =>
        readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? (readdirSync(join(d, f)).length ? walk(join(d, f)) : [`${relative(join(dir, 'node_modules'), join(d, f))}/`]) : [relative(join(dir, 'node_modules'), join(d, f))]));
      expect(walk(join(dir, 'node_modules')).sort()).toEqual(
        [
          `onnxruntime-node/bin/napi-v6/${here}/onnxruntime_binding.node`,
          'onnxruntime-node/dist/index.js',
          'better-sqlite3/package.json',
          'better-sqlite3/lib/index.js',
          'better-sqlite3/build/Release/better_sqlite3.node',
        ].sort(),
      );
      expect(readFileSync(join(dir, 'node_modules', 'better-sqlite3/build/Release/better_sqlite3.node'), 'utf8')).toBe('better-sqlite3/build/Release/better_sqlite3.node');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // After the prune, the build stops unless both native modules load on the image itself.
    const check = instructions.findIndex((i) => i.stage === depsStage && i.op === 'RUN' && /require\('better-sqlite3'\)/.test(i.args) && /require\('onnxruntime-node'\)/.test(i.args));
    expect(check).toBeGreaterThan(instructions.indexOf(prune!));
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

  it('checks health on /healthz and starts node under tini, which passes it SIGTERM', () => {
    // The probe asks /healthz over HTTPS when the agent serves it (test/e2e/status-https.test.ts, image-standalone.test.ts run it).
    const check = /^(.*) CMD (\[.*\])$/.exec(argsOf('HEALTHCHECK')[0]!);
    expect(JSON.parse(check![2]!)).toEqual(['node', 'dist/agent/healthcheck.js']);
    expect(readFileSync(join(root, 'agent', 'healthcheck.ts'), 'utf8')).toContain('healthz');
    // The probe's own timeout (agent/healthcheck.ts) is under Docker's, so a hung agent is told as one.
    const dockerTimeoutS = Number(/--timeout=(\d+)s/.exec(check![1]!)![1]);
    const probeTimeoutMs = Number(/const TIMEOUT_MS = ([\d_]+);/.exec(readFileSync(join(root, 'agent', 'healthcheck.ts'), 'utf8'))![1]!.replace(/_/g, ''));
    expect(probeTimeoutMs).toBeLessThan(dockerTimeoutS * 1000);
    const entry = JSON.parse(argsOf('ENTRYPOINT')[0]!) as string[];
    const bin = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).bin['pumpwatch-agent'];
    // tini is PID 1: a process that is PID 1 cannot end itself by a signal (agent/cli-main.ts needs to).
    expect(entry).toEqual(['/usr/bin/tini', '--', 'node', ...AGENT_NODE_FLAGS, bin]);
    const install = final.find((i) => i.op === 'RUN' && /apt-get install\b.*\btini\b/.test(i.args));
    expect(install, 'the runtime stage installs tini').toBeDefined();
    expect(final.indexOf(install!)).toBeLessThan(final.findIndex((i) => i.op === 'USER')); // as root
    expect(argsOf('STOPSIGNAL')).toEqual(['SIGTERM']);
  });

  it('starts the agent with its node flags and environment from the Dockerfile and the bin, its flags from npm start', () => {
    expect(AGENT_NODE_FLAGS.length).toBeGreaterThan(0);
    const entry = JSON.parse(argsOf('ENTRYPOINT')[0]!) as string[];
    expect(entry.slice(entry.indexOf('node') + 1, -1)).toEqual([...AGENT_NODE_FLAGS]);
    for (const [name, value] of Object.entries(AGENT_ENV)) expect(env[name], name).toBe(value);
    const shebang = readFileSync(join(root, 'agent', 'cli.ts'), 'utf8').split('\n')[0];
    const assignments = Object.entries(AGENT_ENV).map(([name, value]) => `${name}=${value} `).join('');
    expect(shebang).toBe(`#!/usr/bin/env -S ${assignments}node ${AGENT_NODE_FLAGS.join(' ')}`);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    // exec: npm sends SIGTERM to the script's process, which must be the agent, not a shell (npm-start.test.ts).
    expect(pkg.scripts.start).toBe(`exec node ${AGENT_NODE_FLAGS.join(' ')} ${pkg.bin['pumpwatch-agent']}`);
  });

  it('turns onnxruntime\'s usage telemetry off in the image, for the agent and the trainer', () => {
    expect(env.ORT_DISABLE_TELEMETRY).toBe('1');
  });

  it('copies only files that exist, and the context leaves out node_modules, data and .git', () => {
    for (const copy of argsOf('COPY', instructions).filter((c) => !c.startsWith('--from'))) {
      for (const src of copy.split(/\s+/).slice(0, -1)) expect(existsSync(join(root, src)), src).toBe(true);
    }
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'data', '.git', 'dist']));
  });
});

describe('.dockerignore', () => {
  /** Docker's matching, for the patterns used here: anchored at the context root, `*` within a name, `**` any depth. */
  const patterns = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const toRegExp = (p: string) => {
    const body = p
      .split('/')
      .map((seg) => (seg === '**' ? '\0' : seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')))
      .join('/')
      .replace(/\0\//g, '(?:.*/)?')
      .replace(/\0/g, '.*');
    return new RegExp(`^${body}(?:/.*)?$`);
  };
  const ignored = (path: string) => patterns.some((p) => toRegExp(p).test(path));

  it('sends the page files the status endpoint serves, and not its README or screenshot', () => {
    expect(ignored('README.md')).toBe(true);
    expect(ignored('node_modules/x/index.js')).toBe(true);
    expect(ignored('agent/page/app.js')).toBe(false);
    const sent = readdirSync(join(root, 'agent', 'page')).filter((f) => !ignored(`agent/page/${f}`));
    // agent/http/page-routes.ts: index.html, and /page/<name>.(js|css|svg).
    for (const f of sent) expect(f, f).toMatch(/^(index\.html|[a-z0-9][a-z0-9-]*\.(js|css|svg))$/);
    expect(sent).toEqual(expect.arrayContaining(['index.html', 'app.js', 'style.css', 'icon.svg']));
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
    // On the address render.sh is given (PUMPWATCH_PUBLISH_IP), never on every interface by default.
    expect(createOptions.HostConfig.PortBindings[port]).toEqual([{ HostIp: '${PUMPWATCH_PUBLISH_IP}', HostPort: String(defaults.httpPort) }]);
    const [volume, target] = (createOptions.HostConfig.Binds[0] as string).split(':');
    expect(volume).toMatch(/^[a-z][a-z0-9-]+$/); // a named volume, not a host path
    expect(target).toBe(JSON.parse(argsOf('VOLUME')[0]!)[0]);
    expect(pumpwatch.env.PUMPWATCH_DATA_DIR.value).toBe(target);
    expect(pumpwatch.env.PUMPWATCH_HTTP_PORT.value).toBe(String(defaults.httpPort));
  });

  it('runs the module without Linux capabilities or a way to gain privileges', () => {
    expect(createOptions.HostConfig.CapDrop).toEqual(['ALL']);
    expect(createOptions.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(createOptions.HostConfig.CapAdd).toBeUndefined();
    expect(createOptions.HostConfig.Privileged).toBeUndefined();
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

  it('names no desired properties of the pumpwatch module: IoT Hub would replace its whole twin, the trainer\'s models included', () => {
    // "When the desired properties are specified in the deployment manifest, they overwrite any desired
    // properties currently in the module twin": every set-modules (an image upgrade) would delete `models`.
    const named = Object.keys(content.pumpwatch ?? {}).filter((k) => k.startsWith('properties.desired'));
    expect(named).toEqual([]);
  });

  it('documents desired properties the agent accepts, at the config defaults, with every setting field (deployment/README.md)', () => {
    const docs = readFileSync(join(root, 'deployment', 'README.md'), 'utf8');
    const block = /Desired properties of the `pumpwatch` module:\n\n```json\n([\s\S]*?)\n```/.exec(docs);
    expect(block, 'the desired properties example in deployment/README.md').not.toBeNull();
    const desired = JSON.parse(block![1]!);
    for (const name of SECTION_NAMES) {
      const parsed = parseSection(name, desired[name]);
      expect(parsed, name).not.toHaveProperty('error');
      expect(parsed, name).not.toHaveProperty('unknown');
      for (const [key, value] of Object.entries((parsed as { values: Record<string, unknown> }).values)) {
        expect(value, `${name} → ${key}`).toEqual(defaults[key as keyof typeof defaults]);
      }
    }
    expect(Object.keys(TWIN_SETTINGS).sort()).toEqual(Object.keys(desired).filter((k) => k !== 'models').sort());
    // Every field, so that an operator sees all that the twin can change; one without a default
    // value (no JSON value means "unset" in a section) is named in the text below the example.
    for (const name of SECTION_NAMES) {
      const fields = TWIN_SETTINGS[name] as Record<string, keyof typeof defaults>;
      const withDefault = Object.keys(fields).filter((field) => defaults[fields[field]!] !== undefined);
      expect(Object.keys(desired[name]).sort(), name).toEqual(withDefault.sort());
      for (const field of Object.keys(fields).filter((f) => !withDefault.includes(f))) expect(docs, `${name}.${field}`).toContain(`\`${name}.${field}\``);
    }
  });

  it('maps every twin setting field to its own config key, and lists apart a field it does not know', () => {
    const keys = SECTION_NAMES.flatMap((name) => Object.values(TWIN_SETTINGS[name]) as string[]);
    expect(new Set(keys).size).toBe(keys.length);
    for (const key of keys) expect(Object.keys(CONFIG_KEYS)).toContain(key);
    expect(parseSection('ingest', { maxPastSeconds: 3600 })).toEqual({ values: { maxPastSeconds: 3600 } });
    expect(parseSection('modelDownloads', { timeoutSeconds: 30 })).toEqual({ values: { modelDownloadTimeoutSeconds: 30 } });
    expect(parseSection('sync', { backoffMaxSeconds: 10 })).toEqual({ values: { syncBackoffMaxSeconds: 10 } });
    expect(parseSection('ingest', { maxPastSeconds: -1 })).toEqual({ error: expect.stringMatching(/^ingest\.maxPastSeconds=-1: /) });
    expect(parseSection('sync', { logLevel: 'debug' })).toEqual({ values: {}, unknown: ['sync.logLevel'] });
  });

  it('sets only environment variables the agent reads, and createOptions within IoT Edge\'s 4 KB per field', () => {
    const known = Object.values(CONFIG_KEYS).map((k) => k.env);
    for (const name of Object.keys(pumpwatch.env)) expect(known, name).toContain(name);
    const modules = { ...agentDesired.systemModules, ...agentDesired.modules } as Record<string, { settings: { createOptions: string } }>;
    for (const [name, m] of Object.entries(modules)) {
      if (m.settings.createOptions === '${EDGEHUB_CREATE_OPTIONS}') continue; // render.sh writes it (tested there)
      // Longer options must be split into createOptions01, 02, …; these are not.
      expect(m.settings.createOptions.length, name).toBeLessThanOrEqual(4096);
      expect(() => JSON.parse(m.settings.createOptions), name).not.toThrow();
    }
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

describe('Kubernetes trainer jobs (deployment/k8s)', () => {
  // js-yaml (a devDependency) has no types of its own.
  const yaml = createRequire(import.meta.url)('js-yaml') as { load: (text: string) => any };
  const job = yaml.load(readFileSync(join(root, 'deployment', 'k8s', 'trainer-indexed-job.yaml'), 'utf8'));
  const cron = yaml.load(readFileSync(join(root, 'deployment', 'k8s', 'trainer-cronjob.yaml'), 'utf8'));
  const spec = job.spec;
  const pod = spec.template.spec;
  const container = pod.containers[0];
  const args = container.args as string[];
  const shardArg = args[args.indexOf('--shard') + 1]!;

  it('is an Indexed Job with as many completions as shards, each pod its own shard', () => {
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job' });
    expect(spec.completionMode).toBe('Indexed');
    expect(shardArg).toMatch(/^index\/\d+$/);
    const shards = Number(shardArg.split('/')[1]);
    expect(spec.completions).toBe(shards);
    expect(spec.parallelism).toBeGreaterThan(0);
    expect(spec.parallelism).toBeLessThanOrEqual(spec.completions);
    for (let i = 0; i < spec.completions; i++) expect(parseShard(shardArg, { JOB_COMPLETION_INDEX: String(i) })).toEqual({ index: i, shards });
  });

  it('runs the trainer\'s train-all from the image with options it accepts', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(container.command).toEqual(['node', pkg.bin['pumpwatch-trainer']]);
    expect(args[0]).toBe(trainAllCommand.name);
    // Parsed as the pod would: past the options, --deploy first asks for the IoT Hub registry.
    const reached = new Error('options parsed: the registry was asked for');
    const ctx = {
      env: { JOB_COMPLETION_INDEX: '0' },
      container: () => {
        throw reached;
      },
      models: () => {
        throw reached;
      },
      registry: () => {
        throw reached;
      },
      now: () => new Date('2026-12-05T02:00:00Z'),
      isTTY: false,
    };
    await expect(trainAllCommand.run(args.slice(1), { out: () => {}, err: () => {} }, ctx as never)).rejects.toBe(reached);
  });

  it('retries a failed shard on its own, never a usage error, and does not count evictions', () => {
    expect(pod.restartPolicy).toBe('Never');
    expect(spec.backoffLimitPerIndex).toBeGreaterThan(0);
    const rules = spec.podFailurePolicy.rules as Array<Record<string, any>>;
    expect(rules).toContainEqual({ action: 'FailIndex', onExitCodes: { containerName: container.name, operator: 'In', values: [EXIT.usage] } });
    expect(rules).toContainEqual({ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] });
    expect(spec.activeDeadlineSeconds).toBeGreaterThan(0);
  });

  it('fails a shard whose every failure is a pump\'s own data at once, retries one that may pass, and runs every shard whatever the others do', () => {
    const rules = spec.podFailurePolicy.rules as Array<Record<string, any>>;
    expect(rules).toContainEqual({ action: 'FailIndex', onExitCodes: { containerName: container.name, operator: 'In', values: [EXIT.dataFailed] } });
    // Exit 1 (storage, no answer, a deploy pending) matches no rule: the index is retried up to backoffLimitPerIndex.
    const matching = rules.filter((r) => r.onExitCodes?.operator === 'In' && (r.onExitCodes.values as number[]).includes(EXIT.failure));
    expect(matching).toEqual([]);
    expect(rules.some((r) => r.onExitCodes?.operator === 'NotIn')).toBe(false);
    // No maxFailedIndexes: five shards with a new pump of a few readings each must not stop the other eleven.
    expect(spec).not.toHaveProperty('maxFailedIndexes');
    // Nor a backoffLimit, a cap on the failures of all shards together (with backoffLimitPerIndex it defaults to none).
    expect(spec).not.toHaveProperty('backoffLimit');
  });

  it('takes every credential from a Secret, under the names the trainer reads', () => {
    const context = readFileSync(join(root, 'trainer', 'cloud', 'context.ts'), 'utf8');
    for (const e of container.env as Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>) {
      if (e.name === 'NODE_OPTIONS') continue;
      expect(context, e.name).toContain(`env.${e.name}`);
      if (/CONNECTION_STRING|SAS|KEY|TOKEN/.test(e.name)) {
        expect(e.value, e.name).toBeUndefined();
        expect(e.valueFrom?.secretKeyRef, e.name).toMatchObject({ name: expect.any(String), key: expect.any(String) });
      }
    }
  });

  it('runs as the image\'s unprivileged user on a read-only root, with /tmp writable and memory for the heap it allows', () => {
    expect(argsOf('USER')).toEqual(['node']); // uid 1000 in the official Node images
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const tmp = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
    expect(pod.volumes.find((v: { name: string }) => v.name === tmp.name)).toHaveProperty('emptyDir');
    const heapMi = Number(/--max-old-space-size=(\d+)/.exec(container.env.find((e: { name: string }) => e.name === 'NODE_OPTIONS').value)![1]);
    const mi = (q: string) => Number(/^(\d+)(Mi|Gi)$/.exec(q)![1]) * (q.endsWith('Gi') ? 1024 : 1);
    expect(mi(container.resources.requests.memory)).toBeGreaterThanOrEqual(heapMi);
    expect(mi(container.resources.limits.memory)).toBeGreaterThan(heapMi);
  });

  it('sizes a pod for the readings it holds at once, as measured: the manifest\'s run and the README\'s fleet example fit the memory limit at 1 Hz', () => {
    // Peak RSS measured with train-all on Azurite: about 0.2 GiB + 0.37 GiB per million readings in flight (deployment/README.md section 8).
    const peakGiB = (concurrency: number, days: number, perSecond = 1) => 0.2 + (0.37 * concurrency * days * 86_400 * perSecond) / 1e6;
    const limitGiB = Number(/^(\d+)Gi$/.exec(container.resources.limits.memory)![1]);
    const valueOf = (list: string[], flag: string) => Number(list[list.indexOf(flag) + 1]);
    expect(peakGiB(valueOf(args, '--concurrency'), valueOf(args, '--days'))).toBeLessThan(limitGiB);
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const example = /npx pumpwatch-trainer (train-all --shard \S+ .*?)\s+#/.exec(readme)![1]!.split(/\s+/);
    expect(peakGiB(valueOf(example, '--concurrency'), valueOf(example, '--days')), example.join(' ')).toBeLessThan(limitGiB);
    for (const doc of [readFileSync(join(root, 'deployment', 'README.md'), 'utf8'), readFileSync(join(root, 'deployment', 'k8s', 'trainer-indexed-job.yaml'), 'utf8')]) {
      expect(doc.replace(/\s*#?\s+/g, ' ')).toMatch(/0\.2 GiB \+ 0\.37 GiB per million readings in flight/);
    }
  });

  it('names every code of exit 4 (a failure a retry repeats) where it explains exit 4: the manifest and deployment/README.md', () => {
    // The manifest's comment had lost PW_TRAINER_USAGE and PW_TRAINER_FIT when they joined the list.
    for (const doc of [readFileSync(join(root, 'deployment', 'README.md'), 'utf8'), readFileSync(join(root, 'deployment', 'k8s', 'trainer-indexed-job.yaml'), 'utf8')]) {
      for (const code of REPEATING_CODES) expect(doc).toContain(code);
    }
  });

  it('runs the same Job every night, never two at once', () => {
    expect(cron).toMatchObject({ apiVersion: 'batch/v1', kind: 'CronJob', spec: { concurrencyPolicy: 'Forbid' } });
    const { ttlSecondsAfterFinished: _ttl, ...jobSpec } = spec;
    expect(cron.spec.jobTemplate.spec).toEqual(jobSpec);
  });

  describe('the daily refresh of model URLs (trainer-refresh-urls-cronjob.yaml)', () => {
    const refresh = yaml.load(readFileSync(join(root, 'deployment', 'k8s', 'trainer-refresh-urls-cronjob.yaml'), 'utf8'));
    const rPod = refresh.spec.jobTemplate.spec.template.spec;
    const rContainer = rPod.containers[0];
    const rArgs = rContainer.args as string[];
    const hoursOf = (flag: string) => (rArgs.includes(flag) ? Number(rArgs[rArgs.indexOf(flag) + 1]) : undefined);

    it('runs refresh-urls every day, never two at once, with options it accepts', async () => {
      expect(refresh).toMatchObject({ apiVersion: 'batch/v1', kind: 'CronJob', spec: { concurrencyPolicy: 'Forbid', timeZone: 'Etc/UTC' } });
      expect(refresh.spec.schedule).toMatch(/^\d+ \d+ \* \* \*$/);
      expect(rContainer.command).toEqual(container.command);
      expect(rArgs[0]).toBe(refreshUrlsCommand.name);
      const reached = new Error('options parsed: the registry was asked for');
      const ctx = { env: {}, container: () => { throw reached; }, models: () => { throw reached; }, registry: () => { throw reached; }, now: () => new Date('2026-12-05T01:00:00Z'), isTTY: false };
      await expect(refreshUrlsCommand.run(rArgs.slice(1), { out: () => {}, err: () => {} }, ctx as never)).rejects.toBe(reached);
    });

    it('refreshes every URL at least a day before it expires, however long a gateway is offline', () => {
      const within = hoursOf('--within-hours') ?? DEFAULT_WITHIN_HOURS;
      const sas = hoursOf('--sas-hours') ?? DEFAULT_SAS_HOURS;
      // Runs 24 h apart: a URL is signed again while it still has more than (within - 24) h.
      expect(within - 24).toBeGreaterThanOrEqual(24);
      expect(sas).toBeGreaterThan(within);
    });

    it('runs as the nightly training does: same image, Secret, user and read-only root; a usage error is not retried', () => {
      expect(rContainer.image).toBe(container.image);
      expect(rContainer.env.filter((e: { valueFrom?: unknown }) => e.valueFrom)).toEqual(container.env.filter((e: { valueFrom?: unknown }) => e.valueFrom));
      expect(rPod.securityContext).toEqual(pod.securityContext);
      expect(rContainer.securityContext).toEqual(container.securityContext);
      expect(rPod.automountServiceAccountToken).toBe(false);
      const tmp = rContainer.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
      expect(rPod.volumes.find((v: { name: string }) => v.name === tmp.name)).toHaveProperty('emptyDir');
      const heapMi = Number(/--max-old-space-size=(\d+)/.exec(rContainer.env.find((e: { name: string }) => e.name === 'NODE_OPTIONS').value)![1]);
      const mi = (q: string) => Number(/^(\d+)(Mi|Gi)$/.exec(q)![1]) * (q.endsWith('Gi') ? 1024 : 1);
      expect(mi(rContainer.resources.limits.memory)).toBeGreaterThan(heapMi);
      const rules = refresh.spec.jobTemplate.spec.podFailurePolicy.rules as Array<Record<string, any>>;
      expect(rules).toContainEqual({ action: 'FailJob', onExitCodes: { containerName: rContainer.name, operator: 'In', values: [EXIT.usage] } });
    });
  });
});

/** An `se=` value `days` from now (minutes, as `az … --expiry` writes it). */
function inDays(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 16) + 'Z';
}

describe('deployment/render.sh', () => {
  const vars = {
    REGISTRY_ADDRESS: 'myacr.azurecr.io',
    REGISTRY_USERNAME: 'myacr',
    REGISTRY_PASSWORD: 'pw-0123',
    PUMPWATCH_VERSION: '0.1.0',
    SENSOR_IMAGE: 'myacr.azurecr.io/pumpsensor:1.0',
    PUMPWATCH_BLOB_SAS_URL: `https://account.blob.core.windows.net/pumpwatch?sv=2025&sr=c&sp=rcw&se=${inDays(30)}&sig=abc%2B`,
    PUMPWATCH_STATUS_TOKEN: 'tok-0123456789abcdef0123456789abcdef',
    PUMPWATCH_PUBLISH_IP: '192.168.10.5',
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

  it('refuses a value with a space at either end, or only spaces, without printing it', () => {
    // Before, it rendered: a status token of " " made the agent exit 2 on the gateway, in a restart loop.
    for (const [name, bad] of [['PUMPWATCH_STATUS_TOKEN', ' '], ['PUMPWATCH_VERSION', '0.1.0 '], ['REGISTRY_PASSWORD', ' pw-secret']] as const) {
      const r = render({ ...vars, [name]: bad });
      expect(r.status, `${name}=${JSON.stringify(bad)}`).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`render.sh: ${name} begins or ends with a space, or is only spaces: set it without them\n`);
    }
  });

  it('refuses a SAS URL the agent would refuse, with the agent\'s own message, without printing it', () => {
    // Before, these rendered (exit 0), and the agent then exited 2 on every gateway of the deployment.
    const sas = 'sv=2025-01-05&ss=b&srt=co&sp=rcw&sig=SECRETSIG%3D';
    for (const [bad, why] of [
      [`https://gw17acct.blob.core.windows.net/?${sas}`, 'it names no container: its path has 0 non-empty segments and must be /CONTAINER: an account SAS URL?'],
      ['https://gw17acct.blob.core.windows.net/pumpwatch?sv=2025-01-05&sr=c&sp=rcw', 'it carries no signature (no sig= in its query)'],
      [`http://gw17acct.blob.core.windows.net/pumpwatch?${sas}`, 'plain http:// to Azure\'s public endpoint (a host name ending in core.windows.net)'],
    ] as const) {
      const r = render({ ...vars, PUMPWATCH_BLOB_SAS_URL: bad });
      expect(r.status, bad).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.startsWith(`render.sh: PUMPWATCH_BLOB_SAS_URL=(value hidden): ${why}`), r.stderr).toBe(true);
      expect(r.stderr).not.toMatch(/SECRETSIG|gw17acct/);
      // The agent's own refusal, word for word.
      expect(() => loadConfig({ PUMPWATCH_BLOB_SAS_URL: bad })).toThrow(r.stderr.replace(/^render\.sh: /, '').trim());
    }
  });

  it('refuses to render where it cannot run the agent\'s check of the SAS URL, saying what it needs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-render-'));
    try {
      // A copy outside a built checkout: no dist/ beside it.
      mkdirSync(join(dir, 'deployment'));
      for (const f of ['render.sh', 'pumpwatch.deployment.template.json']) writeFileSync(join(dir, 'deployment', f), readFileSync(join(root, 'deployment', f)));
      const r = spawnSync('bash', [join(dir, 'deployment', 'render.sh')], { env: { PATH: process.env.PATH ?? '', ...vars }, encoding: 'utf8' });
      expect(r).toMatchObject({ status: 2, stdout: '' });
      expect(r.stderr).toBe('render.sh: cannot check PUMPWATCH_BLOB_SAS_URL as the agent will: this needs node (20 or later) and this checkout built (npm ci && npm run build)\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const rendered = (stdout: string) => {
    const desired = JSON.parse(stdout).modulesContent.$edgeAgent['properties.desired'];
    return { pumpwatch: JSON.parse(desired.modules.pumpwatch.settings.createOptions), edgeHub: JSON.parse(desired.systemModules.edgeHub.settings.createOptions) };
  };

  it('publishes the status port on PUMPWATCH_PUBLISH_IP only, and edgeHub\'s ports not at all unless EDGEHUB_PUBLISH_PORTS names an address', () => {
    // Before, 8080 had no HostIp (every interface, the cellular side included) and edgeHub published 443, 5671 and 8883 the same way.
    const r = render(vars);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    const { pumpwatch: p, edgeHub } = rendered(r.stdout);
    expect(p.HostConfig.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '192.168.10.5', HostPort: '8080' }] });
    expect(edgeHub).toEqual({});
    const withHub = render({ ...vars, EDGEHUB_PUBLISH_PORTS: '10.1.2.3' });
    expect(withHub).toMatchObject({ status: 0, stderr: '' });
    expect(rendered(withHub.stdout).edgeHub.HostConfig.PortBindings).toEqual(
      Object.fromEntries(['5671', '8883', '443'].map((port) => [`${port}/tcp`, [{ HostIp: '10.1.2.3', HostPort: port }]])),
    );
  });

  it('publishes on every interface only when 0.0.0.0 is given, with a warning; refuses a missing or malformed address', () => {
    const every = render({ ...vars, PUMPWATCH_PUBLISH_IP: '0.0.0.0', EDGEHUB_PUBLISH_PORTS: '::' });
    expect(every.status).toBe(0);
    expect(rendered(every.stdout).pumpwatch.HostConfig.PortBindings['8080/tcp']).toEqual([{ HostIp: '0.0.0.0', HostPort: '8080' }]);
    expect(every.stderr.split('\n')).toEqual([
      expect.stringMatching(/^render\.sh: warning: PUMPWATCH_PUBLISH_IP=0\.0\.0\.0 publishes the status port 8080 on every interface of the gateway, the cellular side included/),
      expect.stringMatching(/^render\.sh: warning: EDGEHUB_PUBLISH_PORTS=:: publishes edgeHub's ports 443, 5671 and 8883 on every interface/),
      '',
    ]);
    const { PUMPWATCH_PUBLISH_IP: _ip, ...missing } = vars;
    expect(render(missing)).toMatchObject({ status: 2, stdout: '', stderr: 'render.sh: PUMPWATCH_PUBLISH_IP is not set\n' });
    for (const [name, bad] of [['PUMPWATCH_PUBLISH_IP', '192.168.10.256'], ['PUMPWATCH_PUBLISH_IP', 'gw-17.plant'], ['PUMPWATCH_PUBLISH_IP', ':::1'], ['EDGEHUB_PUBLISH_PORTS', '1']] as const) {
      const r = render({ ...vars, [name]: bad });
      expect(r, `${name}=${bad}`).toMatchObject({ status: 2, stdout: '' });
      expect(r.stderr).toBe(`render.sh: ${name}=${bad} is not an IP address: give the address of the gateway's interface to publish on (its plant-side one), or 0.0.0.0 for every interface\n`);
    }
    expect(render({ ...vars, PUMPWATCH_PUBLISH_IP: 'fd00::17' })).toMatchObject({ status: 0, stderr: '' });
    // Every interface however it is spelt (the security re-check rendered these without a word).
    for (const any of ['0:0:0:0:0:0:0:0', '::ffff:0.0.0.0', '0::0']) {
      const r = render({ ...vars, PUMPWATCH_PUBLISH_IP: any });
      expect(r.status, any).toBe(0);
      expect(r.stderr, any).toMatch(/^render\.sh: warning: PUMPWATCH_PUBLISH_IP=.* publishes the status port 8080 on every interface/);
    }
  });

  it('refuses a SAS granting more than the sync uses or less, expired, or living past PUMPWATCH_SAS_MAX_DAYS, never printing its signature', () => {
    // Before, sp=racwdl and se=2099-… rendered (exit 0): a SAS taken from a gateway could list and delete the uploads for decades.
    const url = (query: string) => `https://gw17acct.blob.core.windows.net/pumpwatch?sv=2025-01-05&sr=c&${query}&sig=SECRETSIG%3D`;
    const hidden = 'render.sh: PUMPWATCH_BLOB_SAS_URL=(value hidden): ';
    for (const [query, why] of [
      [`sp=racwdl&se=${inDays(30)}`, 'its permissions sp=racwdl grants a, d, l, which the sync does not use'],
      [`sp=cwl&se=${inDays(30)}`, 'its permissions sp=cwl grants l, which the sync does not use: whoever takes the SAS from a gateway could use them (d deletes and l lists the uploads); it lacks r, which the sync needs'],
      [`sp=rc&se=${inDays(30)}`, 'its permissions sp=rc lacks w, which the sync needs'],
      [`sp=rcw&se=2099-01-01T00:00Z`, 'it expires at 2099-01-01T00:00:00.000Z, in '],
      [`sp=rcw&se=${inDays(-1)}`, 'it expired at '],
      [`sp=rcw`, 'it carries no readable expiry (se=) and names no stored access policy (si=)'],
    ] as const) {
      const r = render({ ...vars, PUMPWATCH_BLOB_SAS_URL: url(query) });
      expect(r, query).toMatchObject({ status: 2, stdout: '' });
      expect(r.stderr.startsWith(`${hidden}${why}`), r.stderr).toBe(true);
      expect(r.stderr).not.toMatch(/SECRETSIG|gw17acct/);
    }
    // An account SAS with the container in its path passed before (the security re-check): it reaches
    // every container, the model registry's included, and creates containers. A blob SAS is not the sync's either.
    for (const [query, why] of [
      [`sv=2025-01-05&ss=b&srt=sco&sp=rwc&se=${inDays(30)}`, 'it is an account SAS (ss=, srt=): it reaches every container of the account'],
      [`sv=2025-01-05&sr=b&sp=rcw&se=${inDays(30)}`, 'it is not a container SAS (sr=b)'],
      [`sv=2025-01-05&sp=rcw&se=${inDays(30)}`, 'it is not a container SAS (no sr=)'],
    ] as const) {
      const r = render({ ...vars, PUMPWATCH_BLOB_SAS_URL: `https://gw17acct.blob.core.windows.net/pumpwatch?${query}&sig=SECRETSIG%3D` });
      expect(r, query).toMatchObject({ status: 2, stdout: '' });
      expect(r.stderr.startsWith(`${hidden}${why}`), r.stderr).toBe(true);
      expect(r.stderr).not.toMatch(/SECRETSIG|gw17acct/);
    }
    // A longer life given on purpose is taken; a stored access policy (si=) holds its own expiry and permissions.
    expect(render({ ...vars, PUMPWATCH_BLOB_SAS_URL: url(`sp=rcw&se=${inDays(700)}`), PUMPWATCH_SAS_MAX_DAYS: '730' })).toMatchObject({ status: 0, stderr: '' });
    expect(render({ ...vars, PUMPWATCH_BLOB_SAS_URL: url('si=pumpwatch-upload') })).toMatchObject({ status: 0, stderr: '' });
    expect(render({ ...vars, PUMPWATCH_SAS_MAX_DAYS: 'a year' })).toMatchObject({ status: 2, stderr: 'render.sh: PUMPWATCH_SAS_MAX_DAYS="a year": not a whole number of days from 1 to 99999\n' });
  });

  it('reads only variables deployment/README.md documents in its table', () => {
    const script = readFileSync(join(root, 'deployment', 'render.sh'), 'utf8');
    const required = /^vars=\(([^)]*)\)$/m.exec(script)![1]!.split(' ');
    const optional = [...script.matchAll(/\$\{?([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]!);
    const read = new Set([...required, ...optional]);
    expect(read).toContain('PUMPWATCH_PUBLISH_IP');
    expect(read).toContain('EDGEHUB_PUBLISH_PORTS');
    const table = readFileSync(join(root, 'deployment', 'README.md'), 'utf8').split('\n').filter((l) => l.startsWith('| `'));
    for (const name of [...read, 'PUMPWATCH_SAS_MAX_DAYS']) expect(table.some((row) => row.includes(`\`${name}\``)), name).toBe(true);
  });

  it('refuses a status token shorter than 32 characters, never printing it', () => {
    // Before, a 1-character token rendered.
    const r = render({ ...vars, PUMPWATCH_STATUS_TOKEN: 'tok-short-secret' });
    expect(r).toMatchObject({ status: 2, stdout: '', stderr: `render.sh: PUMPWATCH_STATUS_TOKEN has 16 characters, fewer than ${STATUS_TOKEN_MIN_LENGTH}: a short token is guessed; make one with openssl rand -hex 32\n` });
    expect(render({ ...vars, PUMPWATCH_STATUS_TOKEN: 'x'.repeat(STATUS_TOKEN_MIN_LENGTH) })).toMatchObject({ status: 0, stderr: '' });
  });
});
