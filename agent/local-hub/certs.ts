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

/**
 * The validity of the CA and the server certificate: fixed dates, not the boot clock. A gateway
 * often boots with a wrong clock (1970 without a battery-backed clock, or years behind) that NTP
 * sets right later; a certificate dated from the boot clock (it was "now + 7 days") has expired by
 * then, and OpenSSL, checking on the corrected clock, refuses every reconnect of the agent to its
 * own hub until a restart (and after 7 days of uptime even without a step). This is a local,
 * throw-away development CA (made at each start, trusted only by this process's clients, never
 * written to disk), so a wide window costs nothing: from 1970-01-01 (a gateway without a clock
 * battery boots there, and must reach its own hub before NTP sets the clock, or on a site with no
 * NTP at all: a start in 2000 was "not yet valid" then) to the end of 2049 (the last year an X.509
 * UTCTime can say, which every TLS stack reads; it covers 1950-2049).
 */
const NOT_BEFORE = new Date(0);
const NOT_AFTER = new Date(Date.UTC(2049, 11, 31, 23, 59, 59));

export async function makeTlsMaterial(extraHostNames: string[] = []): Promise<TlsMaterial> {
  const validity = { notBeforeDate: NOT_BEFORE, notAfterDate: NOT_AFTER };
  const ca = await generate([{ name: 'commonName', value: 'PumpWatch local hub CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const names = [...new Set([...LOOPBACK_NAMES, ...extraHostNames])];
  const server = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity,
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
