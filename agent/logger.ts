import pino, { type Logger } from 'pino';
import { redactSecrets } from '../sync/redact.js';

export type { Logger };

/**
 * Structured JSON logs (pino), one child per component. Known secret fields are censored by
 * path, and every message and error text is passed through redactSecrets.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'pumpwatch-agent' },
      redact: {
        paths: ['*.connectionString', '*.sasUrl', '*.token', '*.statusToken', '*.authorization', 'headers.authorization', 'config.statusToken', 'config.blobConnectionString', 'config.blobSasUrl'],
        censor: '[redacted]',
      },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a));
          return method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (err: Error) => ({
          type: err.name,
          code: (err as { code?: unknown }).code,
          message: redactSecrets(err.message ?? String(err)),
        }),
      },
    },
    destination ?? pino.destination(1),
  );
}
