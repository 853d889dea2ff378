import { describe, expect, it } from 'vitest';
import { DEFAULT_MODELS_CONTAINER, modelsFromEnv } from '../../trainer/cloud/context.js';

const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONN = `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY};EndpointSuffix=core.windows.net`;
const SAS = 'sv=2025-01-05&sr=c&sp=rcw&se=2030-01-01T00%3A00%3A00Z&sig=SECRETSIG%3D';

describe("the model registry's container: its own, out of the reach of the SAS the gateways hold", () => {
  it('is "pumpwatch-models" of the connection string\'s account by default, or PUMPWATCH_MODELS_CONTAINER', () => {
    expect(modelsFromEnv({ PUMPWATCH_BLOB_CONNECTION_STRING: CONN }).containerName).toBe(DEFAULT_MODELS_CONTAINER);
    expect(modelsFromEnv({ PUMPWATCH_BLOB_CONNECTION_STRING: CONN, PUMPWATCH_BLOB_CONTAINER: 'uploads', PUMPWATCH_MODELS_CONTAINER: 'registry' }).containerName).toBe('registry');
  });

  it('is refused when it is the uploads\' container, by name or by SAS URL, without printing the signature', () => {
    for (const env of [
      { PUMPWATCH_BLOB_CONNECTION_STRING: CONN, PUMPWATCH_MODELS_CONTAINER: 'pumpwatch' },
      { PUMPWATCH_BLOB_CONNECTION_STRING: CONN, PUMPWATCH_BLOB_CONTAINER: 'shared', PUMPWATCH_MODELS_CONTAINER: 'shared' },
    ]) {
      expect(() => modelsFromEnv(env)).toThrow(/^PUMPWATCH_MODELS_CONTAINER names the uploads' container "(pumpwatch|shared)" \(PUMPWATCH_BLOB_CONTAINER\): the model registry needs a container of its own/);
    }
    // the default colliding, PUMPWATCH_MODELS_CONTAINER never set: said so
    expect(() => modelsFromEnv({ PUMPWATCH_BLOB_CONNECTION_STRING: CONN, PUMPWATCH_BLOB_CONTAINER: 'pumpwatch-models' })).toThrow(
      /^the registry's default container "pumpwatch-models" is the uploads' container "pumpwatch-models" \(PUMPWATCH_BLOB_CONTAINER\): /,
    );
    const env = { PUMPWATCH_BLOB_SAS_URL: `https://acct.blob.core.windows.net/pumpwatch?${SAS}`, PUMPWATCH_MODELS_SAS_URL: `https://acct.blob.core.windows.net/pumpwatch?${SAS}` };
    expect(() => modelsFromEnv(env)).toThrow(/^PUMPWATCH_MODELS_SAS_URL and PUMPWATCH_BLOB_SAS_URL name the same container: /);
    expect(() => modelsFromEnv(env)).not.toThrow(/SECRETSIG/);
  });

  it('refuses a name Blob Storage would refuse, before any request', () => {
    for (const name of ['ta', 'Bad_Name', '-models', 'a--b', 'x'.repeat(64)]) {
      expect(() => modelsFromEnv({ PUMPWATCH_BLOB_CONNECTION_STRING: CONN, PUMPWATCH_MODELS_CONTAINER: name })).toThrow(/is not a container name: 3-63 lowercase letters, digits and single dashes/);
    }
  });

  it('takes a container SAS URL of its own, and says what to set when nothing names it', () => {
    const models = modelsFromEnv({ PUMPWATCH_BLOB_SAS_URL: `https://acct.blob.core.windows.net/pumpwatch?${SAS}`, PUMPWATCH_MODELS_SAS_URL: `https://acct.blob.core.windows.net/pumpwatch-models?${SAS}` });
    expect(models.containerName).toBe('pumpwatch-models');
    expect(() => modelsFromEnv({ PUMPWATCH_BLOB_SAS_URL: `https://acct.blob.core.windows.net/pumpwatch?${SAS}` })).toThrow(
      /^the model registry is not configured: set PUMPWATCH_BLOB_CONNECTION_STRING \(the registry is then container "pumpwatch-models", or PUMPWATCH_MODELS_CONTAINER\) or PUMPWATCH_MODELS_SAS_URL$/,
    );
    expect(() => modelsFromEnv({ PUMPWATCH_MODELS_SAS_URL: `https://acct.blob.core.windows.net/?${SAS}` })).toThrow(/^PUMPWATCH_MODELS_SAS_URL is not usable: it names no container/);
  });
});
