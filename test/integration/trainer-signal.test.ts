/**
 * The trainer CLI (a real process, dist/trainer/cli.js) stopped by SIGTERM or SIGINT while it
 * waits on Blob Storage: it ends at once with the shell's code for the signal and says so. In a
 * container node runs as PID 1, where a signal without a handler is ignored: a deleted pod's
 * trainer then waited for the SIGKILL of its grace period. Blob Storage here is a server that
 * accepts the connection and never answers, so the run is surely mid-request when signalled.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVSTORE_ACCOUNT } from '../../agent/azurite.js';
import { packageRoot } from '../../agent/paths.js';

const TRAINER = join(packageRoot(), 'dist', 'trainer', 'cli.js');

let server: Server;
let port: number;
const sockets = new Set<Socket>();
let connected: () => void = () => {};

beforeAll(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume(); // read the request, never answer
    connected();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('pumpwatch-trainer and signals', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s while a request hangs: exit %i at once, said on stderr', async (signal, code) => {
    const reached = new Promise<void>((resolve) => (connected = resolve));
    const child = spawn(process.execPath, [TRAINER, 'train-all', '--days', '1'], {
      env: { PATH: process.env.PATH ?? '', PUMPWATCH_BLOB_SAS_URL: `http://127.0.0.1:${port}/${DEVSTORE_ACCOUNT}/pumpwatch?sv=2024-01-01&sig=x` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await reached; // listing the sources: the request is out and unanswered
    child.kill(signal);
    const [exitCode, bySignal] = await exited;
    expect({ exitCode, bySignal }).toEqual({ exitCode: code, bySignal: null });
    expect(stderr).toContain(`pumpwatch-trainer: stopped by ${signal}; nothing more is written`);
    expect(stderr).not.toContain('sig=x');
  });
});
