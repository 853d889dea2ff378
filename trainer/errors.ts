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
