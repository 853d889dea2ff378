/**
 * The agent as a real child process (`node dist/agent/cli.js`), for e2e tests that kill it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../agent/paths.js';
import { httpsRequest } from './https.js';

export { freePort } from './ports.js';
import { freePort } from './ports.js';

/** How long one /readyz probe of waitReady may take. */
const READY_PROBE_MS = 5_000;

export interface AgentProcess {
  proc: ChildProcess;
  url: string;
  output: () => string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  waitReady: (timeoutMs?: number) => Promise<void>;
}

/**
 * `opts.nodeArgs`: node's own options before the script (a `--require` preload, say). `opts.ca`: the
 * agent serves HTTPS (PUMPWATCH_HTTP_TLS_* in `env`) with a certificate of this CA, which waitReady trusts.
 * `opts.prefix`: a command that runs node's command line (it must exec it, so `proc` is the agent).
 * `opts.uid`, `opts.gid`: the user the agent runs as (the tests must run as root to give another).
 */
export async function startAgentProcess(
  env: Record<string, string>,
  port?: number,
  opts: { nodeArgs?: string[]; ca?: string; prefix?: string[]; uid?: number; gid?: number } = {},
): Promise<AgentProcess> {
  const httpPort = port ?? (await freePort());
  const command = [...(opts.prefix ?? []), process.execPath, ...(opts.nodeArgs ?? []), join(packageRoot(), 'dist', 'agent', 'cli.js')];
  const proc = spawn(command[0]!, command.slice(1), {
    env: {
      PATH: process.env.PATH ?? '',
      PUMPWATCH_HTTP_PORT: String(httpPort),
      PUMPWATCH_SIMULATE: '0',
      PUMPWATCH_SYNC: 'off',
      PUMPWATCH_HUB: 'off',
      PUMPWATCH_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // After 'exit', the output the process wrote last may still be in its pipes: resolved once they
  // are read to the end ('close'), or 2 s after the exit when something else holds them open (a
  // child process of the agent stuck in the kernel inherits its stderr).
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => {
      const result = code ?? signal ?? 'unknown';
      const late = setTimeout(() => resolve(result), 2_000);
      proc.once('close', () => {
        clearTimeout(late);
        resolve(result);
      });
    }),
  );
  const { ca } = opts;
  const url = `${ca === undefined ? 'http' : 'https'}://127.0.0.1:${httpPort}`;
  // Each probe has its own time limit: an agent that accepts the connection and never answers (stuck
  // at start) must fail waitReady at its deadline with the agent's output, not hang the test.
  const readyStatus = async (): Promise<number> =>
    ca === undefined
      ? (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(READY_PROBE_MS) })).status
      : (await httpsRequest(`${url}/readyz`, { ca, timeoutMs: READY_PROBE_MS })).status;
  const waitReady = async (timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      // A process ended by a signal has no exit code (null) but its signalCode: without this check a
      // test that killed the agent before it was ready (an e2e test's kill at a sync step the agent
      // reached before listening) waited out the whole timeout here.
      const ended = proc.exitCode ?? proc.signalCode;
      if (ended !== null) throw new Error(`agent exited with ${ended} before it was ready:\n${out}`);
      try {
        if ((await readyStatus()) === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent not ready after ${timeoutMs} ms:\n${out}`);
  };
  return { proc, url, output: () => out, exited, waitReady };
}
