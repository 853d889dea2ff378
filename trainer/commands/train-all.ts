/** `pumpwatch-trainer train-all`: train every source of one shard, k at a time. */
import { join } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { buildVersion } from '../../lib/build-info.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { EXIT, failsAgain, fromStorage, REPEATING_CODES, storageError, UsageError } from '../errors.js';
import { checkWritable } from '../files.js';
import { checkHubAnswers, hubHost } from '../deploy/reach.js';
import { createProgress } from '../progress.js';
import { writeReport } from '../report/report.js';
import { ensureRegistryContainer } from '../registry/register.js';
import { readRunRecord, writeRunRecord, type RunRecord } from '../registry/run-record.js';
import { trainSource, type TrainOutcome } from '../train/pipeline.js';
import { readLabelSet, skippedLabelWarning } from '../train/prepare.js';
import { inShard, listSources, mapLimited } from '../train/sources.js';
import { optionalInteger, parseOptions, type Command, type Io } from './command.js';
import { ShardTally } from './shard-tally.js';
import { deployPendingBest, prepareDeploy, type RunVersion } from './deploy.js';
import { printOutcome, runVersionOf, TRAIN_OPTIONS, trainRequest } from './train.js';
import { doneAlready, optionsHash, resumedLine, runOptions, runRecordOf, summaryOf, trainedAgainLine, type Counted, type RunScope, type SourceEnd } from './train-all-outcomes.js';
import { labelIdsOf, labelsChanged, readingsSince } from './train-all-stale.js';

/**
 * Sources in a row whose failure was Blob Storage's (PW_TRAINER_STORAGE: no answer, refused, a
 * 5xx) after which the shard stops starting sources. During an outage each source failed on its
 * own after its request waits (about 15 s each): 44 sources took 6 minutes, and a shard of 200
 * would spend 25 minutes an attempt, three attempts under the Job's backoffLimitPerIndex. A source
 * that succeeds, or fails on its own data, starts the count again.
 */
const OUTAGE_STOP = 5;

const HELP = `Usage: pumpwatch-trainer train-all [--shard I/N] [--concurrency K] [--resume] [--json] (--from DATE --to DATE | --days N) [train options]

Lists the sources with readings in Blob Storage (readings/<source>/), keeps those of shard I of
N (a source belongs to shard: the first 4 bytes of sha256(source) read as a big-endian uint32,
mod N; stable as pumps are added) and runs "train" on each, K at a time. A source with no reading
in the range (a quiet or retired pump) is skipped, not failed, and so is one whose rows are too
few only because the pump was stopped by its stopped-when rule (a standby or seasonal pump:
"skipped: stopped for 8640 of 8640 readings ... too few running rows to train (0, need 100)");
one with too few usable readings otherwise fails. With --days, the range is resolved once when
the run starts (printed on the first line). With --deploy, the IoT Hub settings and deploy
options are checked before any training, then one call is made to the hub (the twin of
--device's module, or the first twin of the query the deploys make, one at most): when it fails
(a host that does not resolve, a key refused) the run exits 1 before training, naming the hub's
host. After each source, whatever its outcome, the best version is deployed when this run promoted
it (or trained that very version: the challenger is the live model itself) or when its deploy
is pending (best.json's deployPending: a run that promoted it did not reach every module; see
"train --help"). A folder under readings/ whose name is not a
percent-encoded pump id is named in a warning and skipped.
In a Kubernetes Indexed Job pass --shard index/N: I is then read from JOB_COMPLETION_INDEX
(digits only). The labels of the shard's sources are read once (a label blob whose metadata
names another pump is not downloaded); each one that is not a valid label is named in a
warning before the sources are trained.

Options:
  --shard I/N         this shard (0 <= I < N; default 0/1: every source)
  --concurrency K     sources trained at once (default 1)
  --report-dir DIR    write DIR/<source>.html for each source trained, kept or skipped
  --resume            a source whose outcome record of this range (below) says promoted, kept
                      or skipped, by a run with the same train options and build, is not read
                      or trained again ("pump-7: done already at … (kept live V), not trained
                      again (--resume)"); a failed one is, and so is one whose labels changed:
                      a label or withdrawal of the source whose span overlaps the range that
                      the record's attempt did not read (the record lists those it read), or
                      one it read gone ("pump-7: trained again: 1 label of the range posted
                      since the earlier attempt read them (its record: …) (--resume)"), and
                      one skipped for no readings that has a readings blob dated in the range
                      now. With --deploy a resumed source's pending deploy is still pushed.
                      For a retry of the same night; without it every source is trained
  --json              print one JSON object a line on stdout instead: each source's outcome
                      record (a resumed one's with "resumed": true) and last
                      {"summary": {…counts by outcome, "skipKinds": {…}}}; everything else
                      (warnings, progress, FAILED lines, deploys) goes to stderr
  (and every option of "train" but --source and --report; see "train --help")

Prints one line per source and a count: "2 promoted, 5 kept, 1 skipped, 0 failed", with
--deploy also the sources whose deploy is left pending (", 1 deploy pending"; a source promoted
whose deploy failed counts as promoted and as deploy pending), with --resume the sources done
already (", 11 done already").
Every source that reached an outcome gets a record in the registry's container,
runs/<from>_<to>/<source>.json (the range's times with - for :), replaced by a later run of the
same range: schema, source, range, outcome (promoted | kept | skipped | failed), skipKind
(no-readings | stopped | no-drift | inconclusive), code (PW_…), reason (one line), version, live,
evaluation (its blob), deployPending, options and optionsHash (the train options that change
the outcome), labelIds (the labels and withdrawals of the range it read), build, startedAt,
finishedAt, shard.
Exit codes:
  0  every source done (promoted, kept or skipped; with --deploy, no deploy left pending)
  4  sources failed, each on its own data or registry, which a retry of the shard fails on
     again (too few usable readings, a readings blob that is not what it says, an option the
     source's readings do not fit, a registry document to repair), and no deploy is left pending: a person must look; a Kubernetes
     Job fails the shard without retrying it. The codes:
     ${REPEATING_CODES.join(', ')}
  1  any other failure of a source (Blob Storage refusing or not answering, a conflict, a
     deploy), a deploy left pending, or a PW_TRAINER_* failure before any source (with --deploy,
     an IoT Hub that does not answer: PW_TRAINER_DEPLOY, nothing trained): a retry may pass.
     After Blob Storage failed ${OUTAGE_STOP} sources in a row, the sources not started yet are not
     tried (counted "not tried"): an outage does not fail every source of the shard in turn
  2  bad usage
  143, 130  stopped by SIGTERM, SIGINT (a pod evicted, the Job's deadline): one line on stderr
     says what was left, "train-all: shard 3/16: stopped by SIGTERM: 12 done (2 promoted,
     9 kept, 1 skipped, 0 failed), 2 interrupted (pump-a, pump-b), 26 not started"`;

/** An error as a source's lines tell it: its PW_* code (or "error") and its message, secrets removed. */
const errorText = (err: unknown): string => `${(err as { code?: string }).code ?? 'error'}: ${safeErrorMessage(err)}`;

/** Records of this range read at once by --resume: small blobs, one GET each. */
const RECORD_READS = 8;

/**
 * A source's training outcome, and (with --deploy) whether its deploy is left pending: counted
 * apart. `repeats`: every failure of the source is one a retry repeats (failsAgain).
 */
interface SourceResult extends Counted {
  repeats: boolean;
}

export function parseShard(text: string | undefined, env: Readonly<Record<string, string | undefined>>): { index: number; shards: number } {
  const m = /^(\d+|index)\/(\d+)$/.exec(text ?? '0/1');
  const indexText = m?.[1] === 'index' ? env.JOB_COMPLETION_INDEX : m?.[1];
  // Digits only: Number('') is 0 and Number('0x2') is 2, and an unset or mangled index must not become a shard.
  const index = indexText !== undefined && /^\d+$/.test(indexText) ? Number(indexText) : NaN;
  const shards = Number(m?.[2]);
  if (!m || !Number.isInteger(index) || !Number.isInteger(shards) || shards < 1 || index < 0 || index >= shards) {
    throw new UsageError(`--shard must be I/N with 0 <= I < N (or index/N with JOB_COMPLETION_INDEX set), got "${text}"${m?.[1] === 'index' ? ` (JOB_COMPLETION_INDEX="${env.JOB_COMPLETION_INDEX ?? ''}")` : ''}`);
  }
  return { index, shards };
}

export const trainAllCommand: Command = {
  name: 'train-all',
  summary: 'train every source of a shard (--shard i/n), k at a time',
  help: HELP,
  async run(args, io, ctx) {
    const { source: _s, report: _r, ...options } = TRAIN_OPTIONS;
    const v = parseOptions('train-all', args, { ...options, shard: { type: 'string' }, concurrency: { type: 'string' }, 'report-dir': { type: 'string' }, resume: { type: 'boolean' }, json: { type: 'boolean' } });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const json = v.json === true;
    // With --json stdout carries the JSON lines only: every line meant for a person goes to stderr.
    const say: Io = json ? { out: io.err, err: io.err, raw: io.raw } : io;
    const { index, shards } = parseShard(v.shard, ctx.env);
    const concurrency = optionalInteger(v.concurrency, '--concurrency', 1) ?? 1;
    // The range is resolved once: with --days, a run that crosses 00:00 UTC still trains every source on the same days.
    const req = trainRequest('train-all', v, 'check', ctx.now());
    const trainOptions = runOptions(req, v.deploy === true);
    const scope: RunScope = { from: req.from, to: req.to, shard: `${index}/${shards}`, options: trainOptions, optionsHash: optionsHash(trainOptions), build: buildVersion() };
    // Checked before training: a promotion that cannot be deployed must not happen at all.
    const deploy = v.deploy === true ? prepareDeploy(ctx, v) : null;
    // And the hub answers, before hours of training whose every deploy would fail (exit 1 without training).
    if (deploy) await checkHubAnswers(deploy.registry, deploy.target, hubHost(ctx.env.PUMPWATCH_IOTHUB_CONNECTION_STRING));
    if (typeof v['report-dir'] === 'string') await checkWritable(v['report-dir'], 'the reports', 'folder');
    const container = ctx.container();
    const { sources: all, unreadable } = await fromStorage('listing the sources in readings/', () => listSources(container));
    const mine = inShard(all, index, shards);
    if (mine.length > 0) await ensureRegistryContainer(ctx.models());
    const resumable = v.resume === true ? await readDone(ctx.models(), container, mine, scope, say) : new Map<string, Resumable>();
    // The labels of this shard's sources only: a blob whose metadata names another pump is not
    // downloaded. Those of the sources --resume may leave alone too: a label or withdrawal of the
    // range that a record's attempt did not read makes the record stale.
    const labels = mine.length > 0 ? await readLabelSet(container, mine) : { labels: [], withdrawals: [], skipped: [] };
    const done = new Map<string, RunRecord>();
    /** The sources whose record no longer stands, with the line that says why. */
    const again = new Map<string, string>();
    for (const [source, { record, readings }] of resumable) {
      const why = [readings, labelsChanged(record, labels, scope)].filter((w) => w !== null);
      if (why.length > 0) again.set(source, trainedAgainLine(record, why.join('; ')));
      else done.set(source, record);
    }
    say.out(`train-all: shard ${index}/${shards}: ${mine.length} of ${all.length} sources, ${concurrency} at a time, readings ${new Date(req.from).toISOString()} → ${new Date(req.to).toISOString()}`);
    for (const folder of unreadable) say.out(`  warning  ${folder}: not a source folder (its name is not a pump id as the agent writes it), skipped`);
    for (const s of labels.skipped) say.out(`  warning  ${skippedLabelWarning(s)}`);
    const outage = { inARow: 0, stopped: false };
    // Counted as they start and end: a SIGTERM (eviction, the Job's deadline) says what was left.
    const results = await new ShardTally(`shard ${index}/${shards}`, mine.length, json).map(mine, concurrency, async (source): Promise<SourceResult> => {
      // Blob Storage down for the whole shard: every source would fail the same way after its own waits.
      if (outage.stopped) return { status: 'not tried', deployPending: false, repeats: false };
      const resumed = done.get(source);
      if (resumed) return resume(resumed);
      const stale = again.get(source);
      if (stale !== undefined) say.out(stale);
      const startedAt = ctx.now();
      const progress = createProgress({ raw: say.raw, line: say.err }, ctx.isTTY && concurrency === 1 && !json, `train ${source}`);
      const printed = new Set<string>();
      let repeats = true;
      // One line per failure: the deploy step, run after a failed training too, fails the same way on the same best.json.
      const failed = (thrown: unknown) => {
        // A Blob Storage SDK error no step wrapped is told as runCli tells it: status and code, never the response body.
        const err = storageError('a Blob Storage request', thrown);
        firstError ??= err;
        repeats &&= failsAgain(err);
        storageFailed ||= (err as { code?: string }).code === 'PW_TRAINER_STORAGE';
        const line = `${source}: FAILED ${errorText(err)}`;
        if (!printed.has(line)) io.err(line);
        printed.add(line);
      };
      let status: SourceResult['status'];
      let own: RunVersion | null = null;
      let storageFailed = false;
      let outcome: TrainOutcome | null = null;
      // The first failure is the record's: the deploy step's, after a failed training, is its consequence.
      let firstError: unknown = null;
      const noteOutage = (): void => {
        outage.inARow = storageFailed ? outage.inARow + 1 : 0;
        if (outage.inARow < OUTAGE_STOP || outage.stopped) return;
        outage.stopped = true;
        say.err(`train-all: shard ${index}/${shards}: Blob Storage failed ${OUTAGE_STOP} sources in a row: the sources not started yet are not tried (exit ${EXIT.failure}: a retry of the shard tries them)`);
      };
      try {
        // A source without readings in the range (a quiet or retired pump) is skipped, not failed.
        outcome = await trainSource({ data: container, models: ctx.models() }, { ...req, source, skipWithoutReadings: true }, progress, () => ctx.now(), labels);
        printOutcome(outcome, say);
        own = runVersionOf(outcome);
        // Every outcome gets its page, as with train --report: a skipped one says why (and, under
        // --if-drifted, shows the drift figures that decided it).
        if (typeof v['report-dir'] === 'string') await writeReport(join(v['report-dir'], `${encodeURIComponent(source)}.html`), outcome);
        status = outcome.status;
      } catch (err) {
        failed(err); // the bar was cleared by trainSource on its way out
        status = 'failed';
      }
      if (!deploy) {
        noteOutage();
        return recorded({ status, deployPending: false, repeats });
      }
      // Whatever the outcome, failed included: a best version whose deploy an earlier run left
      // pending (a pod Kubernetes retries, an earlier night) reaches the gateways now. Counted
      // apart from the outcome: a source promoted whose deploy is left pending was promoted.
      let result: SourceResult;
      try {
        result = { status, deployPending: (await deployPendingBest(ctx, deploy, source, own, say)) !== 0, repeats };
      } catch (err) {
        failed(err);
        result = { status: 'failed', deployPending: false, repeats };
      }
      noteOutage();
      return recorded(result);

      /** Writes the source's outcome record once it is known (after its deploy), and prints it with --json. */
      async function recorded(r: SourceResult): Promise<SourceResult> {
        const end: SourceEnd = r.status === 'failed' ? { status: 'failed', error: firstError, outcome, deployPending: r.deployPending } : { status: r.status as TrainOutcome['status'], outcome: outcome!, deployPending: r.deployPending };
        const record = runRecordOf(scope, source, startedAt, ctx.now(), end, labelIdsOf(labels, source, scope));
        // Not a failure of the source when it cannot be written (its outcome stands); a --resume retry trains it again.
        const written = await saveRecord(record, `its outcome (${record.outcome}) was not recorded`);
        if (json) io.out(JSON.stringify(written ? record : { ...record, recorded: false }));
        return { ...r, ...(record.skipKind ? { skipKind: record.skipKind } : {}) };
      }
    });
    /** Writes a source's outcome record; false, said on stderr with `what` (which write), when it could not be. */
    async function saveRecord(record: RunRecord, what: string): Promise<boolean> {
      try {
        await writeRunRecord(ctx.models(), record);
        return true;
      } catch (err) {
        say.err(`${record.source}: ${what}: ${errorText(err)}`);
        return false;
      }
    }
    /** A source an earlier attempt of this range did (--resume): its line, and with --deploy its pending deploy pushed. */
    async function resume(record: RunRecord): Promise<SourceResult> {
      if (!json) io.out(resumedLine(record));
      // The record keeps the training's outcome, and with --deploy follows best.json's mark: a retry
      // that pushed the deploy a training left pending says so in the record too (before, the
      // record kept deployPending: true after the push, against best.json and the run's summary).
      let result: SourceResult = { status: 'done already', deployPending: false, repeats: true };
      let shown: RunRecord & { recorded?: false } = record;
      if (deploy) {
        try {
          result = { ...result, deployPending: (await deployPendingBest(ctx, deploy, record.source, null, say)) !== 0 };
        } catch (thrown) {
          const err = storageError('a Blob Storage request', thrown);
          io.err(`${record.source}: FAILED ${errorText(err)}`);
          result = { status: 'failed', deployPending: false, repeats: failsAgain(err) };
        }
        if (result.status === 'done already' && result.deployPending !== (record.deployPending ?? false)) {
          shown = { ...record, deployPending: result.deployPending };
          if (!(await saveRecord(shown, `its record's deployPending (now ${String(result.deployPending)}) was not written`))) shown = { ...shown, recorded: false };
        }
      }
      if (json) io.out(JSON.stringify({ ...shown, resumed: true }));
      return result;
    }
    const count = (s: SourceResult['status']) => results.filter((r) => r.status === s).length;
    const pending = results.filter((r) => r.deployPending).length;
    const failures = results.filter((r) => r.status === 'failed' || r.status === 'not tried');
    const exit = pending > 0 || failures.some((r) => !r.repeats) ? EXIT.failure : failures.length > 0 ? EXIT.dataFailed : EXIT.ok;
    if (exit === EXIT.dataFailed) say.err(`train-all: shard ${index}/${shards}: every failure is one of its source's data or registry, which a retry fails on again: exit ${EXIT.dataFailed}`);
    const notTried = count('not tried') > 0 ? `, ${count('not tried')} not tried` : '';
    const doneBefore = count('done already') > 0 ? `, ${count('done already')} done already` : '';
    if (json) io.out(JSON.stringify(summaryOf(results, scope, deploy !== null)));
    else io.out(`train-all: shard ${index}/${shards}: ${count('promoted')} promoted, ${count('kept')} kept, ${count('skipped')} skipped, ${count('failed')} failed${notTried}${doneBefore}${deploy ? `, ${pending} deploy pending` : ''}`);
    return exit;
  },
};

/** A record --resume may take, and (for a `no-readings` skip) the readings of the range found since (readingsSince). */
interface Resumable {
  record: RunRecord;
  readings: string | null;
}

/**
 * --resume: the sources of `sources` that an earlier attempt of this range did (doneAlready). A
 * record that cannot be read is said and its source trained again: a retry must not stop on it.
 * A `no-readings` skip's readings of the range are listed again (`data`: the readings'
 * container, readingsSince); when that listing fails, its source is said and trained again too.
 */
async function readDone(models: ContainerClient, data: ContainerClient, sources: readonly string[], scope: RunScope, say: Io): Promise<Map<string, Resumable>> {
  const found = await mapLimited(sources, RECORD_READS, async (source): Promise<Resumable | null> => {
    const record = await readRunRecord(models, scope.from, scope.to, source).catch((err: unknown) => {
      say.err(`  warning  ${source}: its outcome record of this range was not read (${errorText(err)}): trained again`);
      return null;
    });
    if (record === null || !doneAlready(record, scope)) return null;
    try {
      return { record, readings: await fromStorage(`listing the readings of "${source}"`, () => readingsSince(data, record, scope)) };
    } catch (err) {
      say.err(`  warning  ${source}: its readings of the range were not listed (${errorText(err)}): trained again`);
      return null;
    }
  });
  return new Map(found.flatMap((r) => (r ? [[r.record.source, r] as const] : [])));
}
