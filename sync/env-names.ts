/**
 * `PUMPWATCH_*` environment variables a program does not read, each with the nearest name it does:
 * a misspelt variable (`PUMPWATCH_BLOB_CONNECTIONSTRING`) is otherwise ignored without a word, and
 * its setting silently keeps its default. Shared by the agent (agent/config.ts) and the trainer
 * (trainer/cloud/context.ts), which both import sync/ (as they do sync/redact.ts); only names are
 * looked at, never values (a misspelt secret's value must not reach a log). nearestName also names
 * the section a misspelt module-twin desired key means (agent/edge/desired.ts).
 */

export const ENV_PREFIX = 'PUMPWATCH_';

export interface UnknownVariable {
  /** The variable as set. */
  name: string;
  /** The known name it is most likely a misspelling of; null when none is close. */
  nearest: string | null;
}

/**
 * The variables in `env` whose name starts with PUMPWATCH_ (in any case) and is not one of
 * `known`, in name order, each with its nearest known name.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>, known: readonly string[]): UnknownVariable[] {
  const knownSet = new Set(known);
  return Object.keys(env)
    .filter((name) => name.toUpperCase().startsWith(ENV_PREFIX) && !knownSet.has(name) && env[name] !== undefined)
    .sort()
    .map((name) => ({ name, nearest: nearestName(name, known) }));
}

/**
 * The known name `name` is most likely a misspelling of, or null. Case and underscores are ignored
 * (`PUMPWATCH_LOGLEVEL`, `pumpwatch_log_level` → PUMPWATCH_LOG_LEVEL); else the closest by edits
 * (insertions, deletions, substitutions, swaps of neighbours) after the prefix, at most 2, or 3
 * for a name of 12 characters or more: further than that it is a guess, not a typo.
 */
export function nearestName(name: string, known: readonly string[]): string | null {
  const bare = (n: string): string => n.toUpperCase().replace(/^PUMPWATCH_/, '');
  const squash = (n: string): string => bare(n).replace(/_/g, '');
  const exact = known.find((k) => squash(k) === squash(name));
  if (exact !== undefined) return exact;
  let best: { name: string; distance: number } | null = null;
  for (const k of known) {
    const distance = editDistance(bare(name), bare(k));
    const limit = bare(k).length >= 12 ? 3 : 2;
    if (distance <= limit && (best === null || distance < best.distance)) best = { name: k, distance };
  }
  return best?.name ?? null;
}

/** Edits from `a` to `b`: insertions, deletions, substitutions and swaps of neighbours (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
