import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags of the agent process, chosen with bench/ingest (figures in the README).
 *
 * On the command line, because V8 sizes the young generation when the isolate is created:
 * `--max-semi-space-size=8`. By default each of the two semi-spaces grows to 16 MB under the ingest
 * load: 32 MB of RSS, nearly all of it garbage between two scavenges. With 8 MB the readings in
 * flight (tens of milliseconds from the request to the commit) still die young; with 4 or 1 they
 * are promoted to the old space instead, which then grows by more than the young generation saved.
 * The bin's shebang, the Dockerfile's ENTRYPOINT and `npm start` pass these flags;
 * test/unit/deployment.test.ts checks that they agree with this list.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/**
 * Environment of the agent process, set by the bin's shebang and the Dockerfile (`npm start` runs
 * node directly, without it, so that it also works where npm uses cmd.exe).
 *
 * `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own arena, up to 8 per core
 * (the main thread, libuv's pool, V8's helpers, the worker threads); each keeps what it once held.
 * Two arenas: 146-148 MB idle and 163-164 MB peak in bench/ingest, instead of 150-153 and 168-172
 * (3 runs each), at the same throughput. Other C libraries ignore it.
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * Flags V8 reads while it runs, set by the agent's entry point before the agent is built (V8 only
 * prints a warning for a flag it does not know, so a Node whose V8 lacks one still starts).
 *
 * `--no-allocation-site-pretenuring`: a reading stays alive from its request to its commit, long
 * enough that V8 sometimes decides the object literals of the ingest path (readings, prediction
 * rows) are long-lived and allocates them straight in the old space. They are not, and the old
 * space then fills with them until the next full collection: in bench/ingest's HTTP run that left
 * a peak RSS of 220-230 MB instead of about 165 MB in 4 of 27 runs; in none of 16 runs without it.
 *
 * `--heap-growing-percent=20`: the old generation may grow by 20 % (V8 keeps its floor of 8 MB
 * more than what the last full collection left) before the next full collection, instead of up to
 * 4 times that on a machine whose memory gives a heap limit of gigabytes. Under a sustained load
 * the readings in flight (a request's tens of milliseconds outlive a scavenge) are promoted at
 * several MB/s: with the default factor the old generation grew from 13 to 33-35 MB without one
 * full collection over bench/ingest's HTTP run; with 20 % a collection (3-15 ms, mostly
 * concurrent) comes every few seconds and it stays under 30 MB: 8-10 MB less peak RSS at the same
 * throughput. It sets no limit: a heap that needs more still grows.
 *
 * `--max-semi-space-size=0`: back to unset once the main isolate exists (its young generation was
 * sized at its creation by the command line's 8 MB, and keeps it). V8 reads the flag again for
 * every isolate created after, and a set flag wins over a worker's `resourceLimits`
 * (maxYoungGenerationSizeMb): left at 8, every worker thread (sync's encoder, housekeeping, a first
 * model's fit) got a 16 MB young generation whatever its limit; sync's encoder thread did under
 * bench/ingest --sync (new space 16 MB instead of its 8).
 */
export const RUNTIME_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring', '--heap-growing-percent=20', '--max-semi-space-size=0'];

export function applyRuntimeV8Flags(): void {
  for (const flag of RUNTIME_V8_FLAGS) setFlagsFromString(flag);
}
