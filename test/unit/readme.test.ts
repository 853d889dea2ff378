import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configReference, loadConfig } from '../../agent/config.js';
import { packageRoot } from '../../agent/paths.js';

const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
const tableRow = (env: string) => readme.split('\n').find((line) => line.startsWith(`| \`${env}\` |`));

/** A key's value taken by the agent at start-up (the twin parses through the same schema). */
function accepted(env: string, value: string): boolean {
  try {
    // Enough pumps allowed that PUMPWATCH_SIMULATE's own range is what is tested.
    loadConfig({ PUMPWATCH_MAX_PUMPS: '10000', [env]: value });
    return true;
  } catch (err) {
    if (err instanceof ConfigError) return false;
    throw err;
  }
}

/** `a_{b,c}_d` → `a_b_d`, `a_c_d`. */
function expandBraces(pattern: string): string[] {
  const m = /\{([^{}]*,[^{}]*)\}/.exec(pattern);
  if (!m) return [pattern];
  return m[1]!.split(',').flatMap((part) => expandBraces(pattern.slice(0, m.index) + part + pattern.slice(m.index + m[0].length)));
}

/** The agent's own sources (what runs on the gateway), without the trainer. */
function sourceFiles(): string[] {
  return ['agent', 'inference', 'buffer', 'sync', 'lib'].flatMap((dir) =>
    readdirSync(join(packageRoot(), dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(packageRoot(), dir, f), 'utf8')),
  );
}

describe('README', () => {
  it('documents every configuration variable with its default in the configuration table', () => {
    for (const key of configReference()) {
      const row = tableRow(key.env);
      expect(row, `${key.env} is missing from the README's configuration table`).toBeDefined();
      if (key.default !== '—') expect(row, key.env).toContain(`\`${key.default}\``);
      // The live column names the twin field that changes the key at run time, or says restart.
      expect(row?.split(' | ')[4], key.env).toBe(key.twin ? `\`${key.twin}\`` : 'restart');
      // The table is the reference `pumpwatch-agent --help` prints, row for row.
      const generated = `| \`${key.env}\` | ${key.default === '—' ? '—' : `\`${key.default}\``} | ${key.unit} | ${key.accepts} | ${key.twin ? `\`${key.twin}\`` : 'restart'} | ${key.description} |`;
      expect(row, key.env).toBe(generated);
    }
  });

  it("gives every number key's bounds in the table, and they are the ones the agent enforces", () => {
    const numeric = configReference().filter((k) => /^(integer|number)\b/.test(k.accepts));
    expect(numeric.length).toBeGreaterThan(20);
    for (const key of numeric) {
      const cell = tableRow(key.env)?.split(' | ')[3] ?? '';
      const m = /^(integer|number) (?:([^\s,]+)–([^\s,]+)|≥ ([^\s,]+))/.exec(cell);
      expect(m, `${key.env}: no range in the table's accepted-values column ("${cell}")`).not.toBeNull();
      const [, kind, lo, hi, atLeast] = m!;
      const min = Number(lo ?? atLeast);
      const step = kind === 'integer' ? 1 : min / 10 || 0.001;
      expect(accepted(key.env, String(min)), `${key.env}=${min}`).toBe(true);
      expect(accepted(key.env, String(min - step)), `${key.env}=${min - step}`).toBe(false);
      if (hi !== undefined) {
        expect(accepted(key.env, String(Number(hi))), `${key.env}=${hi}`).toBe(true);
        expect(accepted(key.env, String(Number(hi) + step)), `${key.env}=${Number(hi) + step}`).toBe(false);
      } else {
        // No upper bound in the table: none is enforced either (a byte count's 2^53 − 1 is one).
        expect(accepted(key.env, '1e300'), `${key.env}=1e300 is refused, yet the table gives no upper bound`).toBe(true);
      }
      if (kind === 'integer') expect(accepted(key.env, String(min + 0.5)), `${key.env}=${min + 0.5}`).toBe(false);
    }
    // The rule between two keys, and the flags' spellings, are in the table too.
    expect(tableRow('PUMPWATCH_SIMULATE')).toContain('at most PUMPWATCH_MAX_PUMPS');
    expect(tableRow('PUMPWATCH_SYNC_CREATE_CONTAINER')?.split(' | ')[3]).toBe('0, 1, true, false');
  });

  it('prints the same accepted values in pumpwatch-agent --help', () => {
    const help = execFileSync(process.execPath, [join(packageRoot(), 'dist', 'agent', 'cli.js'), '--help'], { encoding: 'utf8' });
    for (const key of configReference()) {
      const line = help.split('\n').find((l) => l.startsWith(`  ${key.env} `));
      expect(line, key.env).toBeDefined();
      if (key.accepts !== '—') expect(line, key.env).toContain(`accepts ${key.accepts}`);
    }
  });

  it('names every code the trainer exits 1 with in the trainer README, and PW_TRAINER_NO_MODEL in the README too', () => {
    const errors = readFileSync(join(packageRoot(), 'trainer', 'errors.ts'), 'utf8');
    const union = /export type TrainerErrorCode =([^;]+);/.exec(errors)?.[1] ?? '';
    const codes = [...union.matchAll(/'(PW_TRAINER_[A-Z_]+)'/g)].map((m) => m[1]!);
    expect(codes).toContain('PW_TRAINER_NO_MODEL');
    const trainerReadme = readFileSync(join(packageRoot(), 'trainer', 'README.md'), 'utf8');
    for (const code of codes) expect(trainerReadme, `${code} is not in trainer/README.md`).toContain(code);
    expect(readme).toContain('PW_TRAINER_NO_MODEL');
  });

  it('lists every metric the agent registers in the /metrics row', () => {
    const row = readme.split('\n').find((line) => line.startsWith('| `GET /metrics` |')) ?? '';
    // `pumpwatch_readings_{accepted,rejected}_total`, `pumpwatch_sync_*`, `…_bytes{kind}` (labels).
    const patterns = [...row.matchAll(/`(pumpwatch_[a-z_{},*]+)`/g)].flatMap(([, p]) => expandBraces(p!.replace(/\{[a-z_]+\}$/, '')));
    const names = sourceFiles()
      .flatMap((text) => [...text.matchAll(/\.(?:counter|gauge|histogram|counterFrom)\(\s*'(pumpwatch_[a-z_]+)'/g)].map((m) => m[1]!));
    expect(names).toContain('pumpwatch_edge_input_messages_total');
    for (const name of new Set(names)) {
      expect(patterns.some((p) => new RegExp(`^${p.replace(/\*/g, '[a-z_]*')}$`).test(name)), `${name} is not in the README's /metrics list`).toBe(true);
    }
  });

  it('names every PW_* code of the agent in the README (in full, or as a suffix under its PW_<FAMILY>_* line)', () => {
    const codes = new Set(sourceFiles().flatMap((text) => [...text.matchAll(/'(PW_[A-Z0-9_]+)'/g)].map((m) => m[1]!)));
    expect(codes).toContain('PW_BUFFER_SCHEMA_NEWER');
    const docs = readme + readFileSync(join(packageRoot(), 'deployment', 'README.md'), 'utf8') + readFileSync(join(packageRoot(), 'agent', 'local-hub', 'README.md'), 'utf8') + readFileSync(join(packageRoot(), 'agent', 'page', 'README.md'), 'utf8');
    for (const code of codes) {
      if (docs.includes(code)) continue;
      const family = /^(PW_[A-Z]+_(?:STORE_)?)/.exec(code)?.[1] ?? '';
      const listed = docs.split('\n- ').some((item) => item.includes(`\`${family}*\``) && item.includes(`\`${code.slice(family.length)}\``));
      expect(listed, `${code} is documented nowhere`).toBe(true);
    }
  });

  it('gives the two commands a user starts with', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
