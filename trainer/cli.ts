#!/usr/bin/env node
/** The `pumpwatch-trainer` executable (dist/trainer/cli.js). Commands live in ./commands/. */
// First, before the commands load onnxruntime: see there.
import '../inference/ort-telemetry.js';
import { runCli } from './commands/index.js';
import { stopNoteLines } from './stop-notes.js';

const io = {
  out: (text: string) => process.stdout.write(`${text}\n`),
  err: (text: string) => process.stderr.write(`${text}\n`),
  raw: (text: string) => process.stderr.write(text),
};

/**
 * SIGTERM (a Kubernetes pod deleted or evicted, a Job's deadline) and SIGINT end the run at once,
 * said on stderr, with the shell's code for the signal (143, 130). In a container node is PID 1,
 * which the kernel gives no default action for a signal: without a handler the trainer ignored
 * SIGTERM until the SIGKILL of the grace period. Stopping at once is what that SIGKILL did, sooner:
 * the registry is written blob by blob, each write conditional, and a run killed between any two
 * of them is taken up by the next run (trainer/README.md, "train, step by step"); nothing is held
 * to be flushed.
 */
for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  process.once(signal, () => {
    // What the command running has to say first (train-all: the sources done, interrupted, not started).
    for (const line of stopNoteLines(signal)) {
      process.stderr.write(`${line.err}\n`);
      if (line.out !== undefined) process.stdout.write(`${line.out}\n`);
    }
    process.stderr.write(`pumpwatch-trainer: stopped by ${signal}; nothing more is written, and the next run takes up what this one left (every registry write is conditional)\n`);
    process.exit(code);
  });
}

process.exitCode = await runCli(process.argv.slice(2), io);
