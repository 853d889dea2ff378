import { describe, expect, it } from 'vitest';
import { sasExpiry } from '../../sync/client.js';

describe('the expiry of a SAS credential', () => {
  it('is read from a container SAS URL and from a connection string with a SharedAccessSignature, never from an account key', () => {
    const se = '2026-12-12T10:00:00Z';
    expect(sasExpiry({ kind: 'sas-url', sasUrl: `https://acct.blob.core.windows.net/pumps?sv=2024-11-04&se=${encodeURIComponent(se)}&sr=c&sp=racwl&sig=abc%3D` })).toBe(Date.parse(se));
    expect(sasExpiry({ kind: 'connection-string', container: 'pumps', connectionString: `BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2024-11-04&se=${encodeURIComponent(se)}&sp=racwl&sig=abc` })).toBe(Date.parse(se));
    expect(sasExpiry({ kind: 'connection-string', container: 'pumps', connectionString: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net' })).toBeNull();
    expect(sasExpiry({ kind: 'sas-url', sasUrl: 'https://acct.blob.core.windows.net/pumps?sv=2024-11-04&se=soon&sig=abc' })).toBeNull();
    expect(sasExpiry({ kind: 'sas-url', sasUrl: 'not a url' })).toBeNull();
  });
});
