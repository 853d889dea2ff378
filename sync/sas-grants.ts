/**
 * What a SAS credential of the sync target lets its holder do (`sp`) and until when (`se`), read
 * from its query: neither is a secret (the signature is never read here). The agent's sync needs
 * read and write only (tried against Azurite, test/integration/sas-permissions.test.ts): write
 * creates its blobs (If-None-Match: *, never overwriting), read recognises a blob an earlier upload
 * left (a retry after a crash or a lost answer). Create alone does not do: the retry is then
 * refused with a 403 instead of the 409 that leads to the comparison. Any other letter (delete,
 * list, add, tags, move, immutability, …) only serves whoever steals the SAS from a gateway (a
 * support bundle, the `$edgeAgent` twin): with `d` and `l` they list and delete the uploads.
 */

/** The permissions the sync uses: read and write. */
export const SAS_NEEDED_PERMISSIONS = 'rw';
/** What a sync SAS may grant: the needed ones, and create (within write: it adds nothing). */
export const SAS_ALLOWED_PERMISSIONS = 'rcw';

export interface SasGrants {
  /** The `sp` letters, or null when the query has none (a stored access policy's, `si=`, then holds them). */
  permissions: string | null;
  /** `se` as epoch ms, null when absent or unreadable. */
  expiresAt: number | null;
  /** Whether the SAS names a stored access policy (`si=`): its permissions and expiry may be there. */
  policy: boolean;
  /**
   * What it reaches: `account` (an account SAS: `ss=` or `srt=`), else its `sr=` (`c` a container,
   * `b` a blob, …), null when it names none.
   */
  resource: string | null;
}

/** The longest lifetime of a sync SAS taken without a word (render.sh: PUMPWATCH_SAS_MAX_DAYS): a yearly rotation. */
export const SAS_MAX_DAYS_DEFAULT = 365;
const DAY_MS = 86_400_000;

/**
 * Why the SAS does not reach the uploads' container alone, or null when it is a container SAS
 * (`sr=c`). An account SAS whose URL names the container passed every check before (the OT security
 * re-check): it reaches every container of the account, the model registry's included (a planted
 * model), and creates containers.
 */
export function sasScopeProblem(grants: SasGrants): string | null {
  if (grants.resource === 'c') return null;
  if (grants.resource === 'account') {
    return 'it is an account SAS (ss=, srt=): it reaches every container of the account, the model registry\'s included, and creates containers; sign a container SAS (sr=c) for the uploads\' container';
  }
  return `it is not a container SAS (${grants.resource === null ? 'no sr=' : `sr=${grants.resource}`}); sign a container SAS (sr=c) for the uploads' container`;
}

/** When the SAS expires (ISO 8601) and in how many days from `now` (0 or less once past); null without a readable `se`. */
export function sasLifetime(grants: SasGrants, now: number): { at: string; days: number } | null {
  if (grants.expiresAt === null) return null;
  return { at: new Date(grants.expiresAt).toISOString(), days: (grants.expiresAt - now) / DAY_MS };
}

/**
 * Why the SAS lives too long (its expiry more than `maxDays` from `now`: one taken from a gateway
 * would work that long), or null. An expired one is the expiry warner's to say (agent/wiring/sync.ts).
 */
export function sasLifetimeProblem(grants: SasGrants, now: number, maxDays = SAS_MAX_DAYS_DEFAULT): string | null {
  const life = sasLifetime(grants, now);
  if (life === null || life.days <= maxDays) return null;
  return `it expires at ${life.at}, in ${Math.round(life.days)} days: a SAS taken from a gateway would work that long; sign one for at most ${maxDays} days`;
}

/** The grants of a SAS query (`?sv=…&sp=…&se=…&sig=…`, with or without its `?`). */
export function sasGrants(query: string): SasGrants {
  const params = new URLSearchParams(query.replace(/^\?/, ''));
  const se = params.get('se');
  const at = se === null ? NaN : Date.parse(se);
  const resource = params.has('ss') || params.has('srt') ? 'account' : params.get('sr');
  return { permissions: params.get('sp'), expiresAt: Number.isFinite(at) ? at : null, policy: params.has('si'), resource };
}

/** The letters of `permissions` beyond what the sync may hold, and those it needs but lacks. */
export function sasPermissionGaps(permissions: string): { excess: string[]; missing: string[] } {
  const letters = [...new Set(permissions.split(''))];
  return {
    excess: letters.filter((l) => !SAS_ALLOWED_PERMISSIONS.includes(l)),
    missing: SAS_NEEDED_PERMISSIONS.split('').filter((l) => !letters.includes(l)),
  };
}

/** Why `permissions` are not those of a sync SAS (excess and missing letters named), or null when they are. */
export function sasPermissionsProblem(permissions: string): string | null {
  const { excess, missing } = sasPermissionGaps(permissions);
  const parts: string[] = [];
  if (excess.length > 0) parts.push(`grants ${excess.join(', ')}, which the sync does not use: whoever takes the SAS from a gateway could use them (d deletes and l lists the uploads)`);
  if (missing.length > 0) parts.push(`lacks ${missing.join(', ')}, which the sync needs (write creates the blobs, read recognises one an earlier upload left)`);
  return parts.length === 0 ? null : `its permissions sp=${permissions} ${parts.join('; it ')}; sign it with sp=${SAS_ALLOWED_PERMISSIONS}`;
}
