/**
 * The agent's start-up check of PUMPWATCH_BLOB_SAS_URL, on its own, for deployment/render.sh
 * (`node dist/agent/check-sas-url.js`, the URL in the environment, never on the command line). A
 * manifest rendered with a URL the agent refuses (an account SAS URL, no sig, plain http to Azure)
 * made the agent exit 2 on every gateway it reached, a crash loop across the fleet. The same schema
 * as the agent's, so the two cannot differ. Exit 0 when the agent takes it, 2 with the agent's
 * message (the value hidden) when not.
 *
 * With `--deployment` (render.sh), what a new manifest must hold beyond what the agent takes (the
 * OT security review): the SAS's permissions exactly those the sync uses (sync/sas-grants.ts), an
 * expiry not past and within PUMPWATCH_SAS_MAX_DAYS (default 365), and a status token of at least
 * STATUS_TOKEN_MIN_LENGTH characters. The agent only warns of these (an upgraded gateway keeps its
 * credentials); a manifest is where they are chosen. One line per problem, never a signature or the token.
 */
import { SAS_MAX_DAYS_DEFAULT, sasGrants, sasLifetime, sasPermissionsProblem, sasScopeProblem } from '../sync/sas-grants.js';
import { CONFIG_KEYS, ConfigError, parseKeys } from './config.js';
import { shortTokenProblem } from './http/auth.js';

const SAS = CONFIG_KEYS.blobSasUrl.env;

/** Why the SAS URL and the token should not go into a manifest, one line each. */
function deploymentProblems(env: NodeJS.ProcessEnv, now: number): string[] {
  const problems: string[] = [];
  const maxText = env.PUMPWATCH_SAS_MAX_DAYS ?? String(SAS_MAX_DAYS_DEFAULT);
  const maxDays = /^[1-9]\d{0,4}$/.test(maxText) ? Number(maxText) : null;
  if (maxDays === null) problems.push(`PUMPWATCH_SAS_MAX_DAYS=${JSON.stringify(maxText.slice(0, 20))}: not a whole number of days from 1 to 99999`);
  const grants = sasGrants(new URL(env[SAS]!).search);
  const hidden = `${SAS}=(value hidden)`;
  if (grants.permissions !== null) {
    const problem = sasPermissionsProblem(grants.permissions);
    if (problem !== null) problems.push(`${hidden}: ${problem}`);
  } else if (!grants.policy) problems.push(`${hidden}: it carries no permissions (no sp=) and names no stored access policy (si=)`);
  const scope = sasScopeProblem(grants);
  if (scope !== null) problems.push(`${hidden}: ${scope}`);
  const life = sasLifetime(grants, now);
  if (life === null) {
    if (!grants.policy) problems.push(`${hidden}: it carries no readable expiry (se=) and names no stored access policy (si=)`);
  } else {
    const { at, days } = life;
    if (days <= 0) problems.push(`${hidden}: it expired at ${at}: the sync would be refused from the start; sign a new one`);
    else if (maxDays !== null && days > maxDays)
      problems.push(
        `${hidden}: it expires at ${at}, in ${Math.round(days)} days, past PUMPWATCH_SAS_MAX_DAYS (${maxDays}): a SAS taken from a gateway would work that long; sign one for at most ${maxDays} days (--expiry), or set PUMPWATCH_SAS_MAX_DAYS to allow it on purpose`,
      );
  }
  const token = env[CONFIG_KEYS.statusToken.env];
  const short = token === undefined ? null : shortTokenProblem(token);
  if (short !== null) problems.push(short);
  return problems;
}

try {
  parseKeys({ blobSasUrl: process.env[SAS] }, (k) => CONFIG_KEYS[k].env);
  if (process.argv.includes('--deployment')) {
    const problems = deploymentProblems(process.env, Date.now());
    if (problems.length > 0) {
      process.stderr.write(`${problems.join('\n')}\n`);
      process.exitCode = 2;
    }
  }
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.problems.join('; ')}\n`);
  process.exitCode = 2;
}
