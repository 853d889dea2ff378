import { describe, expect, it } from 'vitest';
import { containerSasUrlProblem } from '../../sync/sas-url.js';
import { containerFromEnv, modelsFromEnv } from '../../trainer/cloud/context.js';

const SAS = 'sv=2025-01-05&ss=b&srt=sco&sp=rwlac&se=2030-01-01T00%3A00%3A00Z&sig=SECRETSIG%3D';

describe('containerSasUrlProblem: the URL of one container, with a signature, as the Blob SDK reads the path', () => {
  it.each([
    ['an Azure container SAS URL', `https://acct.blob.core.windows.net/pumpwatch?${SAS}`],
    ['an Azure one with a trailing slash', `https://acct.blob.core.windows.net/pumpwatch/?${SAS}`],
    ['a custom domain', `https://blobs.example.com/pumpwatch?${SAS}`],
    ['an Azurite one (IP address: /account/container)', `http://127.0.0.1:10999/devstoreaccount1/pumpwatch?${SAS}`],
    ['an Azurite one on localhost', `http://localhost:4711/devstoreaccount1/pumpwatch?${SAS}`],
    ['a host name on Azurite\'s port', `http://azurite.lan:10000/devstoreaccount1/pumpwatch?${SAS}`],
    ['the Azure Blob Storage on IoT Edge module over plain http on the edge network', `http://azureblobstorage:11002/edgeaccount/pumpwatch?${SAS}`],
  ])('takes %s', (_what, url) => {
    expect(containerSasUrlProblem(url)).toBeNull();
  });

  it.each([
    ['an Azure account SAS URL', `https://acct.blob.core.windows.net/?${SAS}`, /path has 0 non-empty segments and must be \/CONTAINER: an account SAS URL\?/],
    ['an Azure account SAS URL without the slash', `https://acct.blob.core.windows.net?${SAS}`, /path has 0 non-empty segments/],
    ['an Azurite account SAS URL', `http://127.0.0.1:10999/devstoreaccount1?${SAS}`, /path has 1 non-empty segment and must be \/ACCOUNT\/CONTAINER .*an account SAS URL\?/],
    ['a blob\'s URL', `https://acct.blob.core.windows.net/pumpwatch/models/a.onnx?${SAS}`, /path has 3 non-empty segments and must be \/CONTAINER: a blob's or a folder's URL\?/],
    ['an empty segment', `http://127.0.0.1:10999//pumpwatch?${SAS}`, /names no container/],
    ['no signature', 'https://acct.blob.core.windows.net/pumpwatch?sv=2025-01-05&sr=c&sp=rcw', /carries no signature/],
    ['another scheme', `ftp://acct.blob.core.windows.net/pumpwatch?${SAS}`, /not an http\(s\) URL/],
    ['plain http to Azure', `http://acct.blob.core.windows.net/pumpwatch?${SAS}`, /^plain http:\/\/ to Azure's public endpoint \(a host name ending in core\.windows\.net\)/],
    ['plain http to Azure\'s fully qualified name', `http://ACCT.blob.core.windows.net./pumpwatch?${SAS}`, /^plain http:\/\/ to Azure's public endpoint/],
    ['plain http to Azure Germany', `http://acct.blob.core.cloudapi.de/pumpwatch?${SAS}`, /ending in core\.cloudapi\.de\)/],
  ])('refuses %s, naming why, the value never repeated', (_what, url, why) => {
    const problem = containerSasUrlProblem(url);
    expect(problem).toMatch(why);
    expect(problem).not.toContain('SECRETSIG');
    expect(problem).not.toContain('acct');
  });
});

describe('the trainer\'s PUMPWATCH_BLOB_SAS_URL', () => {
  it('is refused the same way, before any request, the value hidden', () => {
    const env = { PUMPWATCH_BLOB_SAS_URL: `http://127.0.0.1:10999/devstoreaccount1?${SAS}` };
    expect(() => containerFromEnv(env)).toThrow(/^PUMPWATCH_BLOB_SAS_URL is not usable: it names no container: .*an account SAS URL\?/);
    expect(() => containerFromEnv(env)).not.toThrow(/SECRETSIG/);
  });

  it('refuses plain http to Azure\'s public endpoint, as the agent does, in the SAS URLs and the connection string alike', () => {
    const https = `https://acct.blob.core.windows.net/pumpwatch-models?${SAS}`;
    expect(() => containerFromEnv({ PUMPWATCH_BLOB_SAS_URL: `http://acct.blob.core.windows.net/pumpwatch?${SAS}` })).toThrow(/^PUMPWATCH_BLOB_SAS_URL is not usable: plain http:\/\/ to Azure's public endpoint/);
    expect(() => modelsFromEnv({ PUMPWATCH_MODELS_SAS_URL: https.replace('https:', 'http:') })).toThrow(/^PUMPWATCH_MODELS_SAS_URL is not usable: plain http:\/\/ to Azure's public endpoint/);
    const conn = { PUMPWATCH_BLOB_CONNECTION_STRING: 'DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net' };
    for (const make of [containerFromEnv, modelsFromEnv]) {
      expect(() => make(conn)).toThrow(/^PUMPWATCH_BLOB_CONNECTION_STRING is not usable: plain http:\/\/ to Azure's public endpoint/);
      expect(() => make(conn)).not.toThrow(/c2VjcmV0|acct/);
    }
    expect(containerFromEnv({ PUMPWATCH_BLOB_CONNECTION_STRING: 'UseDevelopmentStorage=true' }).containerName).toBe('pumpwatch');
  });

  it('takes a container SAS URL, naming the container its path gives', () => {
    expect(containerFromEnv({ PUMPWATCH_BLOB_SAS_URL: `http://127.0.0.1:10999/devstoreaccount1/pumpwatch?${SAS}` }).containerName).toBe('pumpwatch');
  });
});
