/**
 * The agent's command line (run, simulate, --help), loaded by agent/cli.ts once agent/early.ts has
 * caught the stop signals: see cli.ts for why this is not the entry point itself.
 */
import { earlySignal, endBySignal, handleSignals, releaseSignals, signalsDelivered } from './early.js';
import { Agent } from './main.js';
import { ConfigError, configReference, loadConfig, unknownVariableWarning } from './config.js';
import { localUrl } from './http/local-url.js';
import { createLogger, flushLogs } from './logger.js';
import { applyRuntimeV8Flags } from './node-flags.js';
import { runSimulateCli } from './simulate-cli.js';
import { safeErrorMessage, safeStackFrames } from '../sync/redact.js';

const HELP = `pumpwatch-agent: the PumpWatch edge agent (an Azure IoT Edge module).

Usage:
  pumpwatch-agent              run the agent (standalone when nothing is configured)
  pumpwatch-agent simulate …   write simulated pump readings as CSV (simulate --help)
  pumpwatch-agent drain …      upload what a moved-aside buffer file holds (drain --help)
  pumpwatch-agent --help       this text

Configuration (environment variables):
${configReference()
  .map((k) => `  ${k.env.padEnd(42)} ${k.description} [${k.unit}; default ${k.default}${k.accepts === '—' ? '' : `; accepts ${k.accepts}`}${k.twin ? `; live: twin ${k.twin}` : ''}]`)
  .join('\n')}
`;

/**
 * A signal this soon after the first is the same request delivered twice, not a second one: under
 * `npm start`, Ctrl-C (or a SIGTERM to the process group) reaches the agent from the terminal and
 * again from npm, which forwards it to its child a moment later.
 */
const DUPLICATE_SIGNAL_MS = 1_000;

/**
 * Stops cleanly on SIGTERM/SIGINT (IoT Edge sends SIGTERM, then SIGKILL after a grace period); a
 * second signal, a second later or more, exits at once. Takes over from early.ts's handler: a
 * signal that came while the agent was being built is acted on now. Returns whether a stop began.
 */
function installSignalHandlers(
  stop: () => Promise<void>,
  heldBy: () => string[],
  flushLogs: (done: () => void) => void,
  said: (msg: 'stopping' | 'stopped', fields: Record<string, unknown>) => void,
): () => boolean {
  let stoppingSince: number | null = null;
  // node's exit waits for every thread: one held in a call the OS never answers (agent.exitHeldBy)
  // would keep it from ever ending, so the process then ends by the signal's default action, once
  // the log lines written meanwhile are out (at most a second).
  const exit = (signal: NodeJS.Signals, code: number): void => {
    const held = heldBy();
    if (held.length === 0) {
      // A clean stop is told in the log as the start is: `iotedge logs` could not tell it from a kill.
      if (stoppingSince !== null) said('stopped', { signal, exitCode: code, stopMs: Math.round(performance.now() - stoppingSince) });
      setTimeout(() => process.exit(code), 1_000).unref();
      flushLogs(() => process.exit(code));
      return;
    }
    process.stderr.write(`pumpwatch-agent: ${held.join('; ')}: node's exit would wait for it forever; ending by ${signal} instead\n`);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      if (!endBySignal(signal)) process.stderr.write('pumpwatch-agent: as PID 1 it cannot end itself by a signal: waiting for SIGKILL\n');
    };
    setTimeout(end, 1_000).unref();
    flushLogs(end);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stoppingSince !== null) {
      if (performance.now() - stoppingSince < DUPLICATE_SIGNAL_MS) return;
      process.stderr.write(`second ${signal}: exiting now\n`);
      exit(signal, 1);
      return;
    }
    stoppingSince = performance.now();
    said('stopping', { signal });
    const force = setTimeout(() => {
      process.stderr.write('clean stop took longer than 10 s: exiting\n');
      exit(signal, 1);
    }, 10_000);
    force.unref();
    stop().then(
      () => exit(signal, 0),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${safeErrorMessage(err)}\n`);
        exit(signal, 1);
      },
    );
  };
  handleSignals(onSignal);
  return () => stoppingSince !== null;
}

/** A bad setting: one line on stderr with its code, naming it (never a secret's value), exit code 2. */
function configError(err: ConfigError): number {
  process.stderr.write(`pumpwatch-agent: ${err.code}: ${err.message}\n`);
  return 2;
}

async function runAgent(): Promise<number> {
  const signal = earlySignal();
  if (signal !== null) {
    // Nothing is open yet: nothing to stop.
    process.stderr.write(`pumpwatch-agent: ${signal} during start-up, before anything was opened: exiting\n`);
    return 0;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) return configError(err);
    throw err;
  }
  applyRuntimeV8Flags();
  const logger = createLogger(config.logLevel);
  for (const v of config.unknownVariables) {
    logger.warn({ component: 'config', code: 'PW_CONFIG_UNKNOWN_VARIABLE', variable: v.name, nearest: v.nearest }, unknownVariableWarning(v));
  }
  const agent = new Agent({ config, logger });
  const stopping = installSignalHandlers(
    () => agent.stop(),
    () => agent.exitHeldBy(),
    (done) => flushLogs(logger, done),
    (msg, fields) => logger.info({ component: 'agent', ...fields }, msg),
  );
  try {
    await agent.start();
  } catch (err) {
    if (!(err instanceof ConfigError)) logger.fatal({ err }, 'agent failed to start');
    await agent.stop();
    // A configuration error found at start-up (a model file that cannot be used) is told like the others.
    return err instanceof ConfigError ? configError(err) : 1;
  }
  if (stopping()) return -1; // a signal came during start-up: the stop it began exits
  const addr = agent.httpAddress();
  const where = addr ? localUrl(addr.host, addr.port, addr.tls) : '(no status endpoint)';
  const sim = config.resolvedSimulate > 0 ? `${config.resolvedSimulate} simulated pumps, ` : '';
  logger.info({ component: 'agent', statusPage: where, simulatedPumps: config.resolvedSimulate, dataDir: config.dataDir, device: config.resolvedDeviceId }, 'running');
  // For a person at a terminal; under IoT Edge stdout is the JSON log, which a plain line would break.
  if (!config.edge) process.stdout.write(`PumpWatch agent running: status page ${where} (${sim}buffer in ${config.dataDir}); Ctrl-C stops it\n`);
  return -1; // keep running until a signal
}

async function main(argv: string[]): Promise<void> {
  await signalsDelivered();
  const [command, ...rest] = argv;
  if (command !== undefined && command !== 'run') releaseSignals(); // no clean stop to wait for
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return;
  }
  if (command === 'simulate') {
    process.exitCode = await runSimulateCli(rest);
    return;
  }
  if (command === 'drain') {
    // Loaded here, as the agent's modules are (cli.ts): the Blob SDK only for the command that uses it.
    const { runDrainCli } = await import('./drain.js');
    process.exitCode = await runDrainCli(rest);
    return;
  }
  if (command !== undefined && command !== 'run') {
    process.stderr.write(`pumpwatch-agent: unknown command "${command}"\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  const code = await runAgent();
  if (code >= 0) process.exit(code);
}

/**
 * A failure nothing else caught: its message with secrets removed and its call frames, exit code 1.
 * Never the raw stack, which repeats the message (for an SDK error, a response body that may echo a signature).
 */
function crash(what: string, err: unknown): never {
  const name = err instanceof Error ? `${err.name}: ` : '';
  process.stderr.write(`pumpwatch-agent: ${what}${name}${safeErrorMessage(err)}${safeStackFrames(err)}\n`);
  process.exit(1);
}

// Node's own report of these would print the raw stack; the agent exits as Node would, with code 1.
process.on('unhandledRejection', (reason: unknown) => crash('unhandled rejection: ', reason));
process.on('uncaughtException', (err: unknown) => crash('uncaught exception: ', err));

main(process.argv.slice(2)).catch((err: unknown) => crash('', err));
