/**
 * Why a file given by path cannot be read, in plain words. Here, in `lib/` (helpers that import
 * nothing of ours), so the configuration (agent/config.ts, loaded by the container's health probe)
 * can word a file setting's refusal without loading onnxruntime with inference/model-file.ts.
 */

/** `kind` is what the file should be (`a model file`). */
export function fileProblem(err: NodeJS.ErrnoException, kind: string): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'ENOTDIR':
      return 'no such file (a folder on its path is a file)';
    case 'EISDIR':
      return `is a folder, not ${kind}`;
    case 'EACCES':
    case 'EPERM':
      return 'not readable (permission denied)';
    default:
      return `cannot be read (${err.message})`;
  }
}

/**
 * Why a certificate file's text is not PEM, or null when it has a certificate block: the status
 * endpoint's certificate (agent/http/tls.ts) and the CA the module client trusts (agent/config.ts)
 * are refused alike.
 */
export function pemCertificateProblem(text: string): string | null {
  return text.includes('-----BEGIN CERTIFICATE-----') ? null : 'not a PEM certificate (no -----BEGIN CERTIFICATE----- line)';
}
