import { describe, expect, it } from 'vitest';
import { containerSasUrlProblem } from '../../sync/sas-url.js';
import { containerFromEnv } from '../../trainer/cloud/context.js';

const SAS = 'sv=2025-01-05&ss=b&srt=sco&sp=rwlac&se=2030-01-01T00%3A00%3A00Z&sig=SECRETSIG%3D';

describe('containerSasUrlProblem: the URL of one container, with a signature, as the Blob SDK reads the path', () => {
  it.each([
    ['an Azure container SAS URL', `https://acct.blob.core.windows.net/pumpwatch?${SAS}`],
    ['an Azure one with a trailing slash', `https://acct.blob.core.windows.net/pumpwatch/?${SAS}`],
    ['a custom domain', `https://blobs.example.com/pumpwatch?${SAS}`],
    ['an Azurite one (IP address: /account/container)', `http://127.0.0.1:10999/devstoreaccount1/pumpwatch?${SAS}`],
    ['an Azurite one on localhost', `http://localhost:4711/devstoreaccount1/pumpwatch?${SAS}`],
    ['a host name on Azurite\'s port', `http://azurite.lan:10000/devstoreaccount1/pumpwatch?${SAS}`],
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

  it('takes a container SAS URL, naming the container its path gives', () => {
    expect(containerFromEnv({ PUMPWATCH_BLOB_SAS_URL: `http://127.0.0.1:10999/devstoreaccount1/pumpwatch?${SAS}` }).containerName).toBe('pumpwatch');
  });
});
