/**
 * .ci/run's control flow and its last line, the "N passed, N failed" summary, with every program
 * it runs stubbed: a copy of the script in a temp folder (it works in the folder above its own),
 * `npm` and the native-module check replaced by scripts that pass or fail as told. Nothing is
 * installed, linted or tested for real.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Run {
  /** Exit code of `npm run lint`. */
  lint?: number;
  /** Exit code of `npm test`. */
  test?: number;
  /** What `npm test` writes to its JSON report; nothing when absent. */
  report?: object;
  /** A report already there from an earlier run. */
  stale?: object;
}

function ciRun(opts: Run) {
  const dir = mkdtempSync(join(tmpdir(), 'pw-ci-'));
  dirs.push(dir);
  mkdirSync(join(dir, '.ci'));
  copyFileSync(join(packageRoot(), '.ci', 'run'), join(dir, '.ci', 'run'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script('chromium', 'echo "Chromium (stub)"');
  script('envsubst', 'cat');
  script('apt-get', 'echo "apt-get must not run: chromium and envsubst are there" >&2; exit 99');
  // The native-module check loads better-sqlite3, absent here; every other node call is the real node.
  script('node', `if [[ "$*" == *better-sqlite3* ]]; then echo "natives load (stub)"; exit 0; fi\nexec "${process.execPath}" "$@"`);
  script(
    'npm',
    [
      'echo "npm $*" >> "$STUB_LOG"',
      'case "$1" in',
      '  ci) exit 0 ;;',
      '  run) [ "$2" = lint ] && exit "$STUB_LINT" ;;',
      '  test) if [ -n "$STUB_REPORT" ]; then printf %s "$STUB_REPORT" > test-artifacts/vitest.json; fi; exit "$STUB_TEST" ;;',
      'esac',
      'exit 98',
    ].join('\n'),
  );
  if (opts.stale) {
    mkdirSync(join(dir, 'test-artifacts'));
    writeFileSync(join(dir, 'test-artifacts', 'vitest.json'), JSON.stringify(opts.stale));
  }
  const log = join(dir, 'stub.log');
  const r = spawnSync('bash', [join(dir, '.ci', 'run')], {
    encoding: 'utf8',
    env: {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      STUB_LOG: log,
      STUB_LINT: String(opts.lint ?? 0),
      STUB_TEST: String(opts.test ?? 0),
      STUB_REPORT: opts.report ? JSON.stringify(opts.report) : '',
    },
  });
  const lines = r.stdout.trimEnd().split('\n');
  return { status: r.status, last: lines.at(-1), stdout: r.stdout, stderr: r.stderr, npm: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [] };
}

const report = (passed: number, failed: number, files: Array<{ name: string; status: string; message?: string; assertionResults: Array<{ status: string }> }> = []) => ({
  numPassedTests: passed,
  numFailedTests: failed,
  numPendingTests: 0,
  numTodoTests: 0,
  success: failed === 0,
  testResults: files,
});

describe('.ci/run', () => {
  it('stops at the first failing command (set -euo pipefail)', () => {
    expect(readFileSync(join(packageRoot(), '.ci', 'run'), 'utf8')).toMatch(/^set -euo pipefail$/m);
  });

  it('runs npm ci, lint and the tests, and ends with the summary of a passing run', () => {
    const r = ciRun({ report: report(3, 0, [{ name: '/x/a.test.ts', status: 'passed', assertionResults: [{ status: 'passed' }] }]) });
    expect(r.stderr).not.toContain('apt-get must not run');
    expect(r.npm.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['npm ci --no-audit', 'npm run lint', 'npm test --']);
    expect(r.last).toBe('3 passed, 0 failed');
    expect(r.status).toBe(0);
  });

  it('never reports an earlier run\'s results when the tests write no report', () => {
    const r = ciRun({ stale: report(500, 0), test: 1 });
    expect(r.last).toBe('0 passed, 1 failed');
    expect(r.status).toBe(1);
  });

  it('counts a test file that failed to load, whose tests never ran', () => {
    const r = ciRun({
      test: 1,
      report: report(3, 0, [
        { name: '/x/a.test.ts', status: 'passed', assertionResults: [{ status: 'passed' }, { status: 'passed' }, { status: 'passed' }] },
        { name: '/x/b.test.ts', status: 'failed', message: "Cannot find module './nope.js'\n at …", assertionResults: [] },
      ]),
    });
    expect(r.stdout).toContain("failed to run: /x/b.test.ts: Cannot find module './nope.js'\n");
    expect(r.last).toBe('3 passed, 1 failed');
    expect(r.status).toBe(1);
  });

  it('does not count a file twice when its failed tests are counted already', () => {
    const r = ciRun({ test: 1, report: report(1, 1, [{ name: '/x/a.test.ts', status: 'failed', assertionResults: [{ status: 'passed' }, { status: 'failed' }] }]) });
    expect(r.last).toBe('1 passed, 1 failed');
  });

  it('ends with a failure when vitest fails for errors outside the tests (every test passed)', () => {
    const r = ciRun({ test: 1, report: report(3, 0) });
    expect(r.stdout).toContain('vitest exited with status 1 for errors outside the tests');
    expect(r.last).toBe('3 passed, 1 failed');
    expect(r.status).toBe(1);
  });

  it('still ends with a summary line when a step before the tests fails', () => {
    const r = ciRun({ lint: 1, report: report(3, 0) });
    expect(r.npm.some((l) => l.startsWith('npm test'))).toBe(false);
    expect(r.last).toBe('0 passed, 1 failed');
    expect(r.status).toBe(1);
  });
});
