/** Typed errors of the local IoT hub, each with a stable `code`. Messages never carry keys or tokens. */
export type LocalHubErrorCode =
  | 'PW_LOCALHUB_UNKNOWN_MODULE'
  | 'PW_LOCALHUB_MODULE_EXISTS'
  | 'PW_LOCALHUB_UNKNOWN_MESSAGE'
  | 'PW_LOCALHUB_BAD_NAME'
  | 'PW_LOCALHUB_BAD_PATCH'
  | 'PW_LOCALHUB_TWIN_TOO_LARGE'
  | 'PW_LOCALHUB_BAD_QUERY'
  | 'PW_LOCALHUB_BROKER_STATE'
  | 'PW_LOCALHUB_REGISTRY_UNSUPPORTED';

export class LocalHubError extends Error {
  constructor(
    readonly code: LocalHubErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LocalHubError';
  }
}

/** Device and module ids: IoT Hub's allowed characters (never a topic separator or wildcard). */
const ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
/** Input names travel raw in a topic level the SDK does not decode: keep them plain. */
const INPUT_PATTERN = /^[A-Za-z0-9\-._]{1,128}$/;

export function assertId(kind: 'deviceId' | 'moduleId', value: string): void {
  if (!ID_PATTERN.test(value)) {
    throw new LocalHubError(
      'PW_LOCALHUB_BAD_NAME',
      `${kind} ${JSON.stringify(value)} is not valid: use 1-128 letters, digits or - . _ % * ? ! ( ) , : = @ $ '`,
    );
  }
}

export function assertInputName(value: string): void {
  if (!INPUT_PATTERN.test(value)) {
    throw new LocalHubError(
      'PW_LOCALHUB_BAD_NAME',
      `input name ${JSON.stringify(value)} is not valid: use 1-128 letters, digits or - . _`,
    );
  }
}
