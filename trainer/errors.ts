/** Typed trainer errors; `code` is stable, messages say what is wrong and where. */

export class UsageError extends Error {
  readonly code = 'PW_TRAINER_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class CsvError extends Error {
  readonly code = 'PW_TRAINER_CSV';
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: string,
  ) {
    super(message);
    this.name = 'CsvError';
  }
}

export class FitError extends Error {
  readonly code = 'PW_TRAINER_FIT';
  constructor(message: string) {
    super(message);
    this.name = 'FitError';
  }
}

/** Errors the CLI reports as bad input (exit code 2) rather than as a crash. */
export function isInputError(err: unknown): err is UsageError | CsvError | FitError {
  return err instanceof UsageError || err instanceof CsvError || err instanceof FitError;
}

/** Exit codes of the trainer CLI. */
export const EXIT = { ok: 0, failure: 1, usage: 2, drifted: 3 } as const;

export type TrainerErrorCode =
  /** Blob Storage or IoT Hub is not configured (environment variables). */
  | 'PW_TRAINER_NOT_CONFIGURED'
  /** Too little usable data in the range to train or compare. */
  | 'PW_TRAINER_NO_DATA'
  /** No model registered for the source (drift, deploy, rollback need one). */
  | 'PW_TRAINER_NO_MODEL'
  /** best.json changed under us (another trainer promoted meanwhile). */
  | 'PW_TRAINER_REGISTRY_CONFLICT'
  /** A registry blob is missing or not what the trainer wrote. */
  | 'PW_TRAINER_REGISTRY_INVALID'
  /** The IoT Hub twin update or query failed. */
  | 'PW_TRAINER_DEPLOY';

/** A failure of the cloud side (storage, registry, hub) with a stable code; never holds secrets. */
export class TrainerError extends Error {
  constructor(
    readonly code: TrainerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TrainerError';
  }
}

/** Removes keys, signatures and tokens from text meant for a message or a log line. */
export function redact(text: string): string {
  return text
    .replace(/(AccountKey|SharedAccessKey|SharedAccessSignature|SharedAccessKeyName)=([^;&\s"']+)/gi, '$1=[redacted]')
    .replace(/([?&](?:sig|se|sv|sp|spr|st|skoid|sktid|skt|ske|sks|skv)=)[^&\s"']+/gi, '$1[redacted]')
    .replace(/SharedAccessSignature sr=[^\s"']+/g, 'SharedAccessSignature [redacted]');
}

/** An error's message without secrets. */
export function safeMessage(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err));
}
