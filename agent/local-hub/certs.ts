/**
 * TLS material made at start-up: a throw-away CA and a server certificate it signs for the loopback
 * names. Clients trust the CA PEM (`ModuleClient.setOptions({ ca })`, an https.Agent `ca`).
 */
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  /** CA certificate, PEM: what clients must trust. */
  ca: string;
  /** Server private key and certificate, PEM. */
  key: string;
  cert: string;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

export async function makeTlsMaterial(extraHostNames: string[] = []): Promise<TlsMaterial> {
  const notAfterDate = new Date(Date.now() + 7 * 24 * 3600 * 1000);
  const ca = await generate([{ name: 'commonName', value: 'PumpWatch local hub CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const names = [...new Set([...LOOPBACK_NAMES, ...extraHostNames])];
  const server = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })),
      },
    ],
  });
  return { ca: ca.cert, key: server.private, cert: server.cert };
}
