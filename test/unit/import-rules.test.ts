/**
 * Who may import whom (../shared/DESIGN.md, "Folders and who may import whom", with the additions
 * the README's "Layout" names): every relative import of the product's folders read from the
 * source and checked against the table below. An arrow the table does not allow fails here, with
 * the file and the import, before it runs back up the architecture unnoticed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';

const root = packageRoot();
const FOLDERS = ['agent', 'inference', 'buffer', 'sync', 'trainer', 'lib'] as const;
type Folder = (typeof FOLDERS)[number];

/**
 * What each folder may import of the others: `true` for the whole folder, else the files (paths
 * from the package root, as imported: `.js`). A folder absent from a row may not be imported.
 */
/**
 * The trainer's files agent/first-model/ imports: train's loading, cleaning, split, fit and scoring,
 * none of which reads Blob Storage (never trainer/cloud, registry, deploy or commands).
 */
const FIRST_MODEL_TRAINER: readonly string[] = [
  'trainer/algorithms/index.js',
  'trainer/data/collect.js',
  'trainer/data/clean.js',
  'trainer/data/stopped.js',
  'trainer/eval/alarms.js',
  'trainer/eval/score.js',
  'trainer/fit.js',
  'trainer/linalg/stats.js',
  'trainer/train/prepare-loaded.js',
  'trainer/train/split.js',
];
/** The one part of agent/ that may import the trainer. */
const FIRST_MODEL_FILES = 'agent/first-model/';

const ALLOWED: Record<Folder, Partial<Record<Folder, true | readonly string[]>>> = {
  // The composition root: everything but the trainer, of which only agent/first-model/ imports the
  // storage-free fit core (a pump's first model fitted on the gateway; FIRST_MODEL_FILES).
  agent: { inference: true, buffer: true, sync: true, lib: true, trainer: FIRST_MODEL_TRAINER },
  // Model contract, sessions, swaps: the buffer's row types only, and the small shared helpers.
  inference: { buffer: ['buffer/types.js'], lib: true },
  buffer: {},
  sync: { buffer: true, lib: true },
  trainer: {
    // The contract, and the agent's own engine to score a model as the agent would (eval/as-agent.ts).
    inference: ['inference/contract.js', 'inference/engine.js', 'inference/model.js'],
    buffer: ['buffer/types.js'],
    // Blob names and reading what the agents uploaded; the agent's redaction, deadlines and storage settings.
    sync: ['sync/layout.js', 'sync/reader.js', 'sync/redact.js', 'sync/errors.js', 'sync/deadline.js', 'sync/env-names.js', 'sync/labels-upload.js', 'sync/sas-url.js', 'sync/plain-http.js'],
    lib: true,
  },
  lib: {},
};

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/gm;

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = posix.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every relative import of a file, resolved to a path from the package root. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = (m[1] ?? m[2]) as string;
    out.push(relative(root, join(root, dirname(file), spec)).split('\\').join('/'));
  }
  return out;
}

/** The imports of `files` (path and text) that the table does not allow, as `<file> imports <target>`. */
function violations(files: ReadonlyArray<{ file: string; text: string }>): string[] {
  const bad: string[] = [];
  for (const { file, text } of files) {
    const folder = file.split('/')[0] as Folder;
    for (const target of importsOf(file, text)) {
      const top = target.split('/')[0] as string;
      if (top === folder) continue;
      const rule = (FOLDERS as readonly string[]).includes(top) ? ALLOWED[folder][top as Folder] : undefined;
      if (folder === 'agent' && top === 'trainer' && !file.startsWith(FIRST_MODEL_FILES)) {
        bad.push(`${file} imports ${target}`);
        continue;
      }
      if (rule === true || (Array.isArray(rule) && rule.includes(target))) continue;
      bad.push(`${file} imports ${target}`);
    }
  }
  return bad;
}

const product = (): Array<{ file: string; text: string }> => FOLDERS.flatMap((folder) => sources(folder).map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') })));

describe('import rules (DESIGN.md)', () => {
  it('no folder imports what the table does not allow', () => {
    const files = product();
    expect(files.length).toBeGreaterThan(200);
    expect(violations(files)).toEqual([]);
  });

  it('reads the forms of import the code uses', () => {
    const text = [
      "import { a } from '../buffer/types.js';",
      "import type { B } from '../../trainer/fit.js';",
      "export { c } from './own.js';",
      "const m = await import('../sync/layout.js');",
      'import {\n  d,\n  e,\n} from "../lib/retry-after.js";',
      "const s = 'not an import from ../agent/main.js';",
    ].join('\n');
    expect(importsOf('inference/x/y.ts', text)).toEqual(['inference/buffer/types.js', 'trainer/fit.js', 'inference/x/own.js', 'inference/sync/layout.js', 'inference/lib/retry-after.js']);
  });

  it('finds an arrow that runs back up, or a file outside a narrow row', () => {
    expect(
      violations([
        { file: 'buffer/store.ts', text: "import { x } from '../agent/main.js';" },
        { file: 'trainer/x.ts', text: "import { y } from '../inference/updater.js';\nimport { z } from '../inference/contract.js';" },
        { file: 'agent/main.ts', text: "import { fitTable } from '../trainer/fit.js';" },
        { file: 'agent/first-model/x.ts', text: "import { fitTable } from '../../trainer/fit.js';\nimport { trainSource } from '../../trainer/train/pipeline.js';" },
      ]),
    ).toEqual(['buffer/store.ts imports agent/main.js', 'trainer/x.ts imports inference/updater.js', 'agent/main.ts imports trainer/fit.js', 'agent/first-model/x.ts imports trainer/train/pipeline.js']);
  });
});
