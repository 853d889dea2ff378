/**
 * The local hub's TLS material when the gateway booted with a wrong clock (1970 without a
 * battery-backed clock, or years behind) that NTP sets right later: OpenSSL checks the chain on
 * the real clock, and a certificate dated from the boot clock had expired by then, so the agent
 * could not reconnect to its own hub. Made with a fake Date, verified by a real TLS handshake.
 */
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeTlsMaterial, type TlsMaterial } from '../../agent/local-hub/certs.js';

/** A TLS handshake with the material at the real time: the client's verdict on the chain. */
async function handshake(m: TlsMaterial): Promise<{ authorized: boolean; error: string | null }> {
  const server = createServer({ key: m.key, cert: m.cert }, (socket) => socket.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: m.ca, rejectUnauthorized: false }, () => {
        resolve({ authorized: socket.authorized, error: socket.authorizationError ? String(socket.authorizationError) : null });
        socket.end();
      });
      socket.on('error', (err) => resolve({ authorized: false, error: err.message }));
    });
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('local hub certificates and a wrong boot clock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    ['1970 (no battery-backed clock)', Date.UTC(1970, 0, 1, 0, 5)],
    ['3 years behind', Date.now() - 3 * 365 * 86_400_000],
  ])('makes material at a boot clock of %s that a client trusts once NTP set the clock', async (_, bootClock) => {
    vi.useFakeTimers({ toFake: ['Date'], now: bootClock });
    const m = await makeTlsMaterial();
    vi.useRealTimers();
    expect(await handshake(m)).toEqual({ authorized: true, error: null }); // before: CERT_HAS_EXPIRED
    for (const pem of [m.ca, m.cert]) {
      const cert = new X509Certificate(pem);
      expect(new Date(cert.validFrom).getTime()).toBeLessThanOrEqual(Date.UTC(2000, 0, 1));
      // years of uptime, and a clock some years ahead, still inside it
      expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 20 * 365 * 86_400_000);
    }
  });

  it('makes material valid at a 1970 boot clock itself, before NTP sets it (or on a site without NTP)', async () => {
    const boot = Date.UTC(1970, 0, 1, 0, 5);
    vi.useFakeTimers({ toFake: ['Date'], now: boot });
    const m = await makeTlsMaterial();
    vi.useRealTimers();
    // OpenSSL on the gateway checks the chain on the clock it reads: both certificates must be valid
    // at that clock already (before: "certificate is not yet valid" until 2000-01-01).
    for (const pem of [m.ca, m.cert]) {
      const cert = new X509Certificate(pem);
      expect(new Date(cert.validFrom).getTime()).toBeLessThanOrEqual(boot);
      expect(new Date(cert.validTo).getTime()).toBeGreaterThan(boot);
      expect(new Date(cert.validFrom).toISOString()).toBe('1970-01-01T00:00:00.000Z');
    }
    expect(await handshake(m)).toEqual({ authorized: true, error: null }); // and today, after NTP
  });
});
