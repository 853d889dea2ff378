/**
 * The module twin's desired properties (DESIGN.md "Module twin"), validated section by section:
 * - `models`: `{ "<pumpId>|default": { version, url, sha256, size, shadow? } }`, each entry on its own;
 * - `sync`, `buffer`, `alerts`, `ingest`, `modelDownloads`, `firstModel`: live settings (TWIN_SETTINGS of the
 *   config), each value checked by the agent's config schema.
 * An invalid section (or model entry) is refused with a reason; the others still apply. A field a
 * section does not have is reported as not applied while the section's known fields apply. Any
 * other top-level key (not starting with `$`) is refused as an unknown section.
 */
import { z } from 'zod';
import type { DesiredModel } from '../../inference/updater.js';
import { CONFIG_KEYS, TWIN_SETTINGS, type Config, type ConfigKey } from '../config.js';
import { nearestName } from '../../sync/env-names.js';
import { describe, PUMP_ID_PATTERN } from '../ingest/validate.js';

/** The desired setting sections (TWIN_SETTINGS of the config: each field and its config key). */
export type SectionName = keyof typeof TWIN_SETTINGS;
export const SECTION_NAMES = Object.keys(TWIN_SETTINGS) as SectionName[];

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * A field's type error: `is required` when the entry lacks it, else what it must be and what it is
 * (zod's issue keeps no input, so the message is made here, where the input is known).
 */
const typeError = (field: string, expected: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `${field}: is required` : `${field}: expected ${expected}, got ${describe(iss.input)}`;

const modelEntry = z.strictObject(
  {
    version: z.string({ error: typeError('version', 'a string') }).regex(VERSION, 'version: 1-128 letters, digits, . _ : - (starting with a letter or digit)'),
    url: z.string({ error: typeError('url', 'a URL string') }).url('url: not a valid URL'),
    sha256: z.string({ error: typeError('sha256', 'a string of 64 hex digits') }).regex(/^[0-9a-fA-F]{64}$/, 'sha256: expected 64 hex digits'),
    size: z.number({ error: typeError('size', 'a number of bytes') }).int('size: expected an integer').positive('size: must be > 0'),
    shadow: z.boolean({ error: typeError('shadow', 'true or false') }).optional(),
  },
  { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown field ${iss.keys.map((k) => `"${k}"`).join(', ')}` : `expected a model entry { version, url, sha256, size }, got ${describe(iss.input)}`) },
);

export type ParsedModels = { entries: Record<string, DesiredModel>; invalid: Record<string, string> };

/** Parses the `models` section: valid entries, and a reason per invalid key (the rest still apply). */
export function parseModels(raw: unknown): ParsedModels | { error: string } {
  if (raw === undefined || raw === null) return { entries: {}, invalid: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { error: 'models: expected an object of model entries by pump id' };
  const entries: Record<string, DesiredModel> = {};
  const invalid: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key.startsWith('$')) continue;
    if (key !== 'default' && !PUMP_ID_PATTERN.test(key)) {
      invalid[key] = `"${key}" is neither "default" nor a valid pump id`;
      continue;
    }
    if (value === null) continue; // deleted entry
    const parsed = modelEntry.safeParse(value);
    if (parsed.success) entries[key] = parsed.data;
    else invalid[key] = describeIssue(parsed.error.issues[0]);
  }
  return { entries, invalid };
}

/**
 * A section parsed: its config values, or the error naming every invalid value of a known field
 * (the section is then refused whole: its fields often go together, as a range's two ends). Fields
 * the agent does not know are listed apart in `unknown` (`alerts.quietHours`) and never refuse
 * the section: a field added in a later version, set fleet-wide while older agents still run, must
 * not cost those agents the section's settings they do know.
 */
export type ParsedSection = ({ values: Partial<Config> } | { error: string }) & { unknown?: string[] };

/**
 * Parses one settings section into config values. `null` (deleted) gives `{}`: the section's keys
 * go back to their start-up values. Every invalid value of the section is in the one error, so an
 * operator fixes them all in one round-trip through the hub.
 */
export function parseSection(name: SectionName, raw: unknown): ParsedSection {
  if (raw === undefined || raw === null) return { values: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { error: `${name}: expected an object` };
  const fields = TWIN_SETTINGS[name] as Record<string, ConfigKey>;
  const values: Partial<Record<ConfigKey, unknown>> = {};
  const unknown: string[] = [];
  const problems: string[] = [];
  for (const [field, value] of Object.entries(raw as Record<string, unknown>)) {
    if (field.startsWith('$')) continue;
    const key = fields[field];
    if (!key) {
      unknown.push(`${name}.${field}`);
      continue;
    }
    const parsed = CONFIG_KEYS[key].schema.safeParse(value);
    if (!parsed.success || parsed.data === undefined) {
      problems.push(`${name}.${field}=${JSON.stringify(value)}: ${parsed.success ? 'required' : (parsed.error.issues[0]?.message ?? 'invalid')}`);
    } else values[key] = parsed.data;
  }
  const result: ParsedSection = problems.length > 0 ? { error: problems.join('; ') } : { values: values as Partial<Config> };
  return unknown.length > 0 ? { ...result, unknown } : result;
}

/**
 * Why a section's unknown fields were not applied. `named` are those the reported side can hold
 * (the agent's limit on unknown keys acknowledged there); `more` counts the rest, in the log only.
 */
export function unknownSettingsReason(name: SectionName, named: string[], more: number, limit: number): string {
  const count = named.length + more;
  const what = named.length > 0 ? `${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}` : `${more} settings of ${name}`;
  const logOnly = more > 0 ? ` (${more} named in the log only: more than ${limit} unknown keys are desired)` : '';
  const known = Object.keys(TWIN_SETTINGS[name]).join(', ');
  return `${what}: unknown setting${count > 1 ? 's' : ''}, not known to this agent version, not applied${logOnly} (known: ${known})`;
}

/**
 * A section's values in force by twin field (`{ intervalSeconds: 30 }`), for the reported `value`:
 * what the agent applied, not the desired text (`"30 "`), so the reported side shows the setting
 * as it runs.
 */
export function sectionValue(name: SectionName, values: Partial<Config>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, key] of Object.entries(TWIN_SETTINGS[name] as Record<string, ConfigKey>)) if (key in values) out[field] = values[key];
  return out;
}

/** The top-level desired keys the agent reads: `models` and the setting sections. */
export const DESIRED_KEYS: readonly string[] = ['models', ...SECTION_NAMES];

/**
 * Top-level reported properties the agent writes itself (agent/edge/reported.ts): a desired key of
 * one of these names cannot be acknowledged under its own name without overwriting them.
 */
export const AGENT_REPORTED_KEYS: readonly string[] = ['modelsRefused', 'pumps', 'pumpsTotal', 'pumpsTruncated', 'modelsTruncated', 'state'];

/** How every refusal of an unknown section begins: the reporter finds an earlier run's by it. */
export const UNKNOWN_SECTION = 'unknown section "';

/**
 * Why a top-level desired key the agent does not read is refused, with the known name it is most
 * likely a misspelling of (`Alerts`, `alert` → alerts; `firstmodel` → firstModel).
 */
export function unknownSectionReason(key: string): string {
  const nearest = nearestName(key, DESIRED_KEYS);
  const hint = nearest === null ? '' : `; did you mean ${nearest}?`;
  return `${UNKNOWN_SECTION}${key}"${hint} (known: ${DESIRED_KEYS.join(', ')})`;
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'invalid model entry';
  const path = issue.path.map(String).join('.');
  return issue.message.includes(':') || !path ? issue.message : `${path}: ${issue.message}`;
}
