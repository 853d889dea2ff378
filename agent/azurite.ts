/**
 * A local Azurite blob service (the npm devDependency) in a child process: the standalone agent's
 * sync target and the tests' Blob Storage. Listens on loopback on a free port, keeps its data in
 * `location`, and stops with its parent: a guard preloaded into the child turns the loss of the IPC
 * channel (parent exited or was killed) into a clean SIGTERM, so Azurite saves its metadata.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/** The well-known development account every Azurite accepts (public, documented by Microsoft). */
export const DEVSTORE_ACCOUNT = 'devstoreaccount1';
export const DEVSTORE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export class AzuriteError extends Error {
  constructor(
    readonly code: 'PW_AZURITE_MISSING' | 'PW_AZURITE_START_FAILED' | 'PW_AZURITE_TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'AzuriteError';
  }
}

export interface AzuriteOptions {
  /** Folder of Azurite's data (created when missing). */
  location: string;
  host?: string;
  /** Port to listen on; default: a free one (retried on a race). */
  port?: number;
  startTimeoutMs?: number;
  /**
   * Keep blobs in memory instead of under `location` (lost when it stops). For benchmarks: in the
   * field the service's storage is not on the gateway's disk, so its writes must not compete with
   * the agent's fsyncs there.
   */
  inMemory?: boolean;
}

export interface AzuriteHandle {
  host: string;
  port: number;
  location: string;
  /** Connection string of the development account on this instance. */
  connectionString: string;
  pid: number | undefined;
  /** Stops Azurite cleanly (SIGTERM; SIGKILL after `graceMs`); resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const GUARD = "process.on('disconnect',()=>process.kill(process.pid,'SIGTERM'))";

export function devstoreConnectionString(host: string, port: number): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};` +
    `BlobEndpoint=http://${host}:${port}/${DEVSTORE_ACCOUNT};`
  );
}

/** Path of Azurite's blob-only entry point, or a clear error when the devDependency is absent. */
export function azuriteBlobMain(): string {
  try {
    const pkg = createRequire(import.meta.url).resolve('azurite/package.json');
    return join(dirname(pkg), 'dist', 'src', 'blob', 'main.js');
  } catch {
    throw new AzuriteError(
      'PW_AZURITE_MISSING',
      'Azurite (the devDependency) is not installed: configure PUMPWATCH_BLOB_CONNECTION_STRING or PUMPWATCH_BLOB_SAS_URL, or set PUMPWATCH_SYNC=off',
    );
  }
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from the OS');
  return address.port;
}

/** Starts Azurite and resolves once it listens. */
export async function startAzurite(options: AzuriteOptions): Promise<AzuriteHandle> {
  const main = azuriteBlobMain();
  const host = options.host ?? '127.0.0.1';
  mkdirSync(options.location, { recursive: true });
  let lastError: AzuriteError | null = null;
  for (let attempt = 0; attempt < (options.port === undefined ? 3 : 1); attempt++) {
    const port = options.port ?? (await freePort(host));
    const child = spawnAzurite(main, host, port, options.location, options.inMemory === true);
    try {
      await waitUntilListening(child, options.startTimeoutMs ?? 30_000);
      return handle(child, host, port, options.location);
    } catch (err) {
      lastError = err as AzuriteError;
      await stopChild(child, 2_000);
    }
  }
  throw lastError ?? new AzuriteError('PW_AZURITE_START_FAILED', 'Azurite did not start');
}

function spawnAzurite(main: string, host: string, port: number, location: string, inMemory: boolean): ChildProcess {
  const args = [
    `--import=data:text/javascript,${encodeURIComponent(GUARD)}`,
    main,
    '--blobHost', host,
    '--blobPort', String(port),
    ...(inMemory ? ['--inMemoryPersistence'] : ['--location', location]),
    '--silent',
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
  ];
  return spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
}

function waitUntilListening(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let output = '';
    const done = (err?: AzuriteError): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-4000);
      if (output.includes('successfully listens on')) done();
    };
    const onExit = (code: number | null): void =>
      done(new AzuriteError('PW_AZURITE_START_FAILED', `Azurite exited with code ${code} while starting: ${output.trim().slice(-500)}`));
    const timer = setTimeout(() => done(new AzuriteError('PW_AZURITE_TIMEOUT', `Azurite did not listen within ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function handle(child: ChildProcess, host: string, port: number, location: string): AzuriteHandle {
  // Keep draining its output so a chatty Azurite never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    host,
    port,
    location,
    pid: child.pid,
    connectionString: devstoreConnectionString(host, port),
    stop: (graceMs = 10_000) => stopChild(child, graceMs),
  };
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Closing the IPC channel makes the guard send SIGTERM (once: a second one would kill Azurite
  // before it saved its metadata), and lets the child's event loop end after the server closed.
  if (child.connected) child.disconnect();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
