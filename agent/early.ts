/**
 * The agent's first module: agent/cli.ts imports it statically, and nothing else, then the command
 * line (cli-main.ts) by a dynamic import. Node loads a static import graph whole before it runs any
 * of it, so this runs as soon as node has started, before the 0.3-1.4 s cli-main's imports take.
 *
 * - onnxruntime's telemetry is turned off before onnxruntime-node loads (inference/ort-telemetry.ts).
 * - SIGTERM and SIGINT are caught from here on. Without a handler, a signal during those imports
 *   would end the process without a clean stop, or, with node as PID 1 in the container, be
 *   ignored (the kernel drops a signal PID 1 has no handler for) until IoT Edge's SIGKILL. One that
 *   comes before the entry point's own handler exists is kept and handed to it (handleSignals); the
 *   entry point stops at once, or exits 0 when it has not opened anything yet.
 */
import '../inference/ort-telemetry.js';

type SignalHandler = (signal: NodeJS.Signals) => void;

let early: NodeJS.Signals | null = null;
let handler: SignalHandler | null = null;

function onSignal(signal: NodeJS.Signals): void {
  if (handler) handler(signal);
  else early ??= signal;
}

process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

/** The signal received before a handler took over, or null. */
export function earlySignal(): NodeJS.Signals | null {
  return early;
}

/** Signals go to `handle` from now on; one received before is handed to it at once. */
export function handleSignals(handle: SignalHandler): void {
  handler = handle;
  if (early !== null) handle(early);
}

/**
 * For the commands that have no clean stop (help, simulate): signals do what they do by default
 * again, and one received before ends the process now, as it would have then.
 */
export function releaseSignals(): void {
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  if (early !== null) process.kill(process.pid, early);
}

/**
 * Ends the process by `signal`'s default action, every handler of it removed first: node's exit
 * waits for every thread, also one held in a call the kernel never answers, and a signal does not.
 * As PID 1 (a container without an init) the kernel drops it: the process then waits for IoT Edge's
 * SIGKILL. Returns whether it may take effect.
 */
export function endBySignal(signal: NodeJS.Signals): boolean {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  return process.pid !== 1;
}

/**
 * Resolves once the event loop has polled since the call: a signal that arrived while the modules
 * were loading (libuv writes it to a pipe, read in the loop's poll phase) has reached onSignal by
 * then. Two turns: the entry point may be evaluated in a poll phase's callback (the ES module
 * loader reads files asynchronously), and the first immediate then runs before the next poll.
 */
export function signalsDelivered(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
