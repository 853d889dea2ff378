import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReference } from '../../agent/config.js';
import { packageRoot } from '../../agent/paths.js';

const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');

describe('README', () => {
  it('documents every configuration variable with its default in the configuration table', () => {
    for (const key of configReference()) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${key.env}\` |`));
      expect(row, `${key.env} is missing from the README's configuration table`).toBeDefined();
      if (key.default !== '—') expect(row, key.env).toContain(`\`${key.default}\``);
      // The live column names the twin field that changes the key at run time, or says restart.
      expect(row?.split(' | ')[3], key.env).toBe(key.twin ? `\`${key.twin}\`` : 'restart');
    }
  });

  it('gives the two commands a user starts with', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
