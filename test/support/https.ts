/**
 * A request to an HTTPS server that trusts only `ca` (a test's own CA, as a client given the
 * gateway's CA would): node's fetch takes no CA of its own. Each request on its own connection.
 */
import { request } from 'node:https';

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** SHA-256 fingerprint of the certificate the server presented (`AB:CD:…`). */
  peerFingerprint256: string;
}

export function httpsRequest(url: string, opts: { ca: string; method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, agent: false }, (res) => {
      const peerFingerprint256 = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, peerFingerprint256 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.timeoutMs !== undefined) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no answer from ${new URL(url).origin} in ${opts.timeoutMs} ms`)));
    req.end(opts.body);
  });
}
