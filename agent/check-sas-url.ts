/**
 * The agent's start-up check of PUMPWATCH_BLOB_SAS_URL, on its own, for deployment/render.sh
 * (`node dist/agent/check-sas-url.js`, the URL in the environment, never on the command line). A
 * manifest rendered with a URL the agent refuses (an account SAS URL, no sig, plain http to Azure)
 * made the agent exit 2 on every gateway it reached, a crash loop across the fleet. The same schema
 * as the agent's, so the two cannot differ. Exit 0 when the agent takes it, 2 with the agent's
 * message (the value hidden) when not.
 */
import { CONFIG_KEYS, ConfigError, parseKeys } from './config.js';

try {
  parseKeys({ blobSasUrl: process.env[CONFIG_KEYS.blobSasUrl.env] }, (k) => CONFIG_KEYS[k].env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.problems.join('; ')}\n`);
  process.exitCode = 2;
}
