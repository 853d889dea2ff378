/**
 * TCP ports for the processes the tests start.
 *
 * The product's freePort() (agent/azurite.ts) asks the kernel for an ephemeral port and closes it
 * again: between that and the child's own bind, the kernel may give the same port to any outgoing
 * connection on the machine (the tests open thousands: to Azurite, to the hub, fetches), and the
 * child then exits 2 on a taken port. Ports drawn here lie below the kernel's ephemeral range, where
 * it hands out no port by itself, in a slice of their own for each vitest worker, and never twice in
 * one process; each is bound once before it is handed out, so a port some other program listens on
 * is skipped. What is left is a program binding that fixed port in the moment between: none of ours.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port drawn: above the registered ports most services use below it (Azurite's 10000–10002). */
const FIRST = 20_000;
const SLICE = 1_000;

/** Start of the kernel's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range), 32768 where it cannot be read. */
export function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** The ports [from, to) this process draws from: its worker's slice below the ephemeral range. */
export function portSlice(poolId = Number(process.env.VITEST_POOL_ID ?? 1)): { from: number; to: number } {
  const slices = Math.max(1, Math.floor((ephemeralLow() - FIRST) / SLICE));
  const index = (Number.isInteger(poolId) && poolId > 0 ? poolId - 1 : 0) % slices;
  return { from: FIRST + index * SLICE, to: FIRST + (index + 1) * SLICE };
}

const handedOut = new Set<number>();
// Each test file runs in a new process of its worker: starting where the pid says, a file does not
// walk the same ports as the file before it, whose last children may still be closing theirs.
let next = -1;

function bindable(port: number, host: string): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A port no other process listens on, drawn from this worker's slice, never the same twice in this process. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const { from, to } = portSlice();
  const size = to - from;
  if (next < 0) next = process.pid % size;
  for (let tried = 0; tried < size; tried++) {
    const port = from + next;
    next = (next + 1) % size;
    if (handedOut.has(port)) continue;
    if (await bindable(port, host)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port left in ${from}–${to - 1} for this test worker (${handedOut.size} handed out)`);
}
