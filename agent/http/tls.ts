/**
 * The status endpoint's certificate and key (PUMPWATCH_HTTP_TLS_CERT_FILE and _KEY_FILE), read and
 * checked at start-up. A file that cannot be read, is not PEM, a key with a passphrase or a key that
 * is not the certificate's stops the agent with a ConfigError (exit 2) naming the variable and the
 * file, never the key's contents. Read once: a restart picks up a renewed certificate.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { fileProblem, pemCertificateProblem } from '../../lib/file-problem.js';
import { CONFIG_KEYS, ConfigError, type Config } from '../config.js';

export interface StatusTls {
  /** PEM, as https.createServer takes them. */
  cert: string;
  key: string;
  /** The server certificate's subject, names and validity, for the start-up log. */
  subject: string;
  subjectAltName: string | null;
  validFrom: Date;
  validTo: Date;
}

/** The certificate and key when both are configured, else null (plain HTTP); a bad one throws ConfigError. */
export async function readStatusTls(config: Pick<Config, 'httpTlsCertFile' | 'httpTlsKeyFile'>): Promise<StatusTls | null> {
  const { httpTlsCertFile: certFile, httpTlsKeyFile: keyFile } = config;
  if (certFile === undefined || keyFile === undefined) return null; // loadConfig refused one without the other
  const certEnv = CONFIG_KEYS.httpTlsCertFile.env;
  const keyEnv = CONFIG_KEYS.httpTlsKeyFile.env;
  const refuse = (env: string, file: string, why: string): never => {
    throw new ConfigError([`${env}=${JSON.stringify(file)}: ${why}`]);
  };
  const cert = await readText(certFile, 'a certificate file');
  if (typeof cert !== 'string') return refuse(certEnv, certFile, cert.problem);
  const key = await readText(keyFile, 'a key file');
  if (typeof key !== 'string') return refuse(keyEnv, keyFile, key.problem);

  const notPem = pemCertificateProblem(cert);
  if (notPem !== null) refuse(certEnv, certFile, notPem);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return refuse(certEnv, certFile, 'not a PEM certificate (its first certificate cannot be parsed)');
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) refuse(keyEnv, keyFile, 'not a PEM private key (no -----BEGIN … PRIVATE KEY----- line)');
  // PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`) or OpenSSL's traditional form (`Proc-Type: 4,ENCRYPTED`).
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(key)) refuse(keyEnv, keyFile, 'the key is encrypted: give it without a passphrase (openssl pkey -in KEY -out KEY.plain)');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    // Only a fixed text: nothing of the key, not even OpenSSL's words about it.
    return refuse(keyEnv, keyFile, 'not a PEM private key (it cannot be parsed)');
  }
  if (!x509.checkPrivateKey(privateKey)) refuse(keyEnv, keyFile, `not the private key of the certificate in ${certEnv} (${JSON.stringify(certFile)})`);
  try {
    // What https.createServer does with them: the whole chain, not only the first certificate.
    createSecureContext({ cert, key });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    refuse(certEnv, certFile, `refused by TLS with the key of ${keyEnv}${code ? ` (${code})` : ''}: a certificate of the chain cannot be used`);
  }
  return { cert, key, subject: x509.subject.replace(/\n/g, ', '), subjectAltName: x509.subjectAltName ?? null, validFrom: new Date(x509.validFrom), validTo: new Date(x509.validTo) };
}

/** A file's text, or why it cannot be read in plain words. */
async function readText(path: string, kind: string): Promise<string | { problem: string }> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    return { problem: fileProblem(err as NodeJS.ErrnoException, kind) };
  }
}
