#!/usr/bin/env node
/** The `pumpwatch-trainer` executable (dist/trainer/cli.js). Commands live in ./commands/. */
// First, before the commands load onnxruntime: see there.
import '../inference/ort-telemetry.js';
import { runCli } from './commands/index.js';

const io = {
  out: (text: string) => process.stdout.write(`${text}\n`),
  err: (text: string) => process.stderr.write(`${text}\n`),
  raw: (text: string) => process.stderr.write(text),
};

process.exitCode = await runCli(process.argv.slice(2), io);
