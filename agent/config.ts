import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { z } from 'zod';
import { firstModelStoppedWhenProblem } from './first-model/stopped-when.js';
import { fileProblem, pemCertificateProblem } from '../lib/file-problem.js';
import { unknownVariables, type UnknownVariable } from '../sync/env-names.js';
import { PLAIN_HTTP_RULE, plainHttpProblem } from '../sync/plain-http.js';
import { CONTAINER_NAME, CONTAINER_NAME_RULE, CONTAINER_SAS_URL_RULE, containerSasUrlProblem } from '../sync/sas-url.js';

/**
 * The agent's configuration: one declared schema. Every key has an environment variable, a default,
 * a unit and a description; the keys in TWIN_SETTINGS may change at run time (module twin), the
 * others need a restart. A bad value is refused with a message naming the variable and the value.
 */
interface KeySpec<T extends z.ZodType> {
  env: string;
  schema: T;
  unit: string;
  description: string;
  /** Secrets are never echoed back in errors or logs. */
  secret?: boolean;
  /**
   * What a text key accepts, for the reference: the same constant as its schema's message. Number,
   * enum and flag keys need none: their range and choices are read from the schema itself.
   */
  accepts?: string;
  /** A further rule (against another key, checked by loadConfig, or one the schema checks beyond `accepts`), said in the reference after the range. */
  alsoRule?: string;
}

const bool = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

/** A decimal number as text: what an environment variable (or a twin string) may hold for a number. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/**
 * A number key: a JSON number (module twin), or a decimal string (environment; trimmed). Never
 * Number()'s coercion, which makes `""`, `" "`, `false` and `[]` 0 and `true` 1: an emptied twin
 * field or a blank variable would then be taken (and acknowledged) as 0 or 1.
 */
const numeric = <T extends z.ZodNumber>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && DECIMAL.test(v.trim()) ? Number(v.trim()) : v), schema);
// Only the type check's message; the bounds (.int(), .min(), .max()) keep zod's own.
const num = () => z.number({ error: (issue) => (issue.code === 'invalid_type' && issue.expected === 'number' ? `expected a number, got ${describeInput(issue.input)}` : undefined) });
// The key's bounds before .int(): the first issue is the one shown, and .int() of a number past
// 2^53 would name JavaScript's safe-integer limit (9007199254740991) instead of the key's maximum.
const int = (min: number, max: number) => numeric(num().min(min).max(max).int());

function describeInput(input: unknown): string {
  if (typeof input === 'number') return `${input}, not a finite number`;
  if (typeof input === 'string') return input.trim() === '' ? 'an empty or blank string' : 'text that is not a decimal number';
  if (Array.isArray(input)) return 'an array';
  if (input === null) return 'null';
  return typeof input === 'object' ? 'an object' : `a ${typeof input}`;
}

/**
 * The slowest simulated rate: setInterval takes at most 2^31-1 ms and runs anything longer every
 * 1 ms, so a rate below about 4.7e-7 Hz would give 1000 readings a second instead of none.
 */
export const MIN_SIMULATE_RATE_HZ = 0.001;
const optionalText = z.string().min(1).optional();

/**
 * The status token: what the page and API send as `Authorization: Bearer <token>`. Spaces at either
 * end are dropped (a secret read from a file keeps its trailing newline, and a header value cannot
 * carry them: such a token was taken at start-up and then refused every request, the page's
 * included). Blank, or with a character a header cannot carry as typed (control characters,
 * non-ASCII), it is refused at start-up, where before it locked every client out.
 */
const statusToken = z
  .string()
  .transform((value) => value.trim())
  .pipe(
    z
      .string()
      .min(1, 'blank: set a token of printable ASCII characters, or unset the variable')
      .regex(/^[\x20-\x7e]+$/, 'has a character other than printable ASCII (letters, digits, punctuation, spaces): an Authorization header cannot carry it as typed'),
  )
  .optional();

/**
 * Why an SDK's own parser refuses a connection string (no request is made), or null when it takes
 * it: a malformed one would otherwise start the agent and fail every attempt to connect, retried
 * for ever with a value that can never work. The SDK's reason names the part that is wrong; it is
 * kept only when short and free of the value, which is a secret.
 */
function sdkRefusal(value: string, parse: (value: string) => unknown): string | null {
  try {
    parse(value);
    return null;
  } catch (err) {
    return err instanceof Error && err.message.length <= 200 && !err.message.includes(value) ? `: ${err.message}` : '';
  }
}

const BLOB_CONNECTION_STRING_RULE = 'DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…, BlobEndpoint=…;SharedAccessSignature=…, or UseDevelopmentStorage=true';

/**
 * A Blob Storage connection string, checked at start-up by the Blob SDK's parser (sdkRefusal), and
 * the endpoint the SDK makes of it (DefaultEndpointsProtocol with EndpointSuffix, or BlobEndpoint)
 * by the plain-http rule (sync/plain-http.ts).
 */
const blobConnectionString = optionalText.superRefine((value, ctx) => {
  if (value === undefined) return;
  // Loaded only when a connection string is set (the sync then loads it anyway): about 10 MB of
  // heap an agent with sync off or a SAS URL does not need.
  const { BlobServiceClient } = createRequire(import.meta.url)('@azure/storage-blob') as typeof import('@azure/storage-blob');
  let endpoint = '';
  const reason = sdkRefusal(value, (v) => (endpoint = BlobServiceClient.fromConnectionString(v).url));
  if (reason !== null) {
    ctx.addIssue({ code: 'custom', message: `not a Blob Storage connection string${reason} (expected ${BLOB_CONNECTION_STRING_RULE})` });
    return;
  }
  const insecure = plainHttpProblem(new URL(endpoint));
  if (insecure !== null) ctx.addIssue({ code: 'custom', message: insecure });
});

/**
 * A container SAS URL, checked at start-up (sync/sas-url.ts): an account SAS URL, with no container
 * in its path, was taken, and every sync then failed with a bare 400 against container "undefined".
 */
const blobSasUrl = z
  .string()
  .url()
  .optional()
  .superRefine((value, ctx) => {
    const problem = value === undefined ? null : containerSasUrlProblem(value);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  });

/** What the IoT SDK's ModuleClient.fromConnectionString takes (it signs in with a shared access key only). */
const MODULE_CONNECTION_STRING_RULE = 'HostName=…;DeviceId=…;ModuleId=…;SharedAccessKey=…, optionally ;GatewayHostName=host:port';

/**
 * Why a module connection string cannot sign in as a module, or null when it can: the IoT SDK's
 * parser (HostName, DeviceId, one credential), then what ModuleClient needs beyond a device's
 * string. Without DeviceId the client failed every attempt ("missing the property: DeviceId"), and
 * without ModuleId it signed in as the device and was refused ("Not authorized"), both for ever.
 */
function checkModuleConnectionString(value: string): { problem: string | null; deviceId: string | undefined } {
  // The SDK is loaded only here, when the string is the one used: the edge part then loads it anyway.
  const device = createRequire(import.meta.url)('azure-iot-device') as typeof import('azure-iot-device');
  let parsed: Record<string, string | undefined> = {};
  const reason = sdkRefusal(value, (v) => (parsed = device.ConnectionString.parse(v) as unknown as Record<string, string | undefined>));
  const problem =
    reason !== null ? `not a module connection string${reason}`
    : !parsed.ModuleId ? 'not a module connection string: it has no ModuleId: a device\'s connection string? (`az iot hub module-identity connection-string show` gives the module\'s)'
    : !parsed.SharedAccessKey ? 'not a module connection string the agent can use: it has no SharedAccessKey, and the IoT SDK signs a module in with a shared access key only (not SharedAccessSignature or x509)'
    : null;
  return { problem: problem === null ? null : `${problem}; expected ${MODULE_CONNECTION_STRING_RULE}`, deviceId: parsed.DeviceId };
}

/**
 * Why the CA file the module client trusts cannot be used, or null when it can. Read here, at
 * start-up, where the agent (with a module connection string) or the IoT SDK (with
 * EdgeHubConnectionString) reads it later: a missing file exited 1 with a fatal log line that did
 * not name the variable, or failed every connection attempt under the SDK.
 */
function moduleCaProblem(path: string): string | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fileProblem(err as NodeJS.ErrnoException, 'a PEM certificate file');
  }
  return pemCertificateProblem(text);
}

function key<T extends z.ZodType>(spec: KeySpec<T>): KeySpec<T> {
  return spec;
}

/** A device id as it goes into blob names: PUMPWATCH_DEVICE_ID, or the IoT Edge id or host name it defaults to. */
const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const DEVICE_ID_RULE = 'letters, digits, . _ : - (at most 128)';
const MODULE_ID_RULE = 'letters, digits, . _ - (at most 128)';

export const CONFIG_KEYS = {
  dataDir: key({ env: 'PUMPWATCH_DATA_DIR', schema: z.string().min(1).default('./data'), unit: 'path', description: 'SQLite buffer and model store' }),
  httpHost: key({ env: 'PUMPWATCH_HTTP_HOST', schema: z.string().min(1).default('127.0.0.1'), unit: 'address', description: 'status endpoint address (0.0.0.0 in the container)' }),
  httpPort: key({ env: 'PUMPWATCH_HTTP_PORT', schema: int(0, 65535).default(8080), unit: 'port', description: 'status endpoint port (0 = any free port)' }),
  statusToken: key({ env: 'PUMPWATCH_STATUS_TOKEN', schema: statusToken, unit: 'text', secret: true, accepts: 'printable ASCII; spaces and newlines at either end are dropped', description: 'bearer token for every route but /healthz, /readyz and the page\'s own files; unset: those routes answer loopback only; at least 32 characters (openssl rand -hex 32): a shorter one is taken with a warning, PW_STATUS_TOKEN_SHORT' }),
  httpTlsCertFile: key({ env: 'PUMPWATCH_HTTP_TLS_CERT_FILE', schema: optionalText, unit: 'path', accepts: 'a PEM certificate file (the server\'s certificate, then its chain)', alsoRule: 'set with PUMPWATCH_HTTP_TLS_KEY_FILE', description: 'the status endpoint serves HTTPS with this certificate (read at start-up: a restart picks up a new one); unset: plain HTTP, where the status token is only as safe as the LAN' }),
  httpTlsKeyFile: key({ env: 'PUMPWATCH_HTTP_TLS_KEY_FILE', schema: optionalText, unit: 'path', accepts: 'a PEM private key file without a passphrase', alsoRule: 'set with PUMPWATCH_HTTP_TLS_CERT_FILE', description: 'private key of PUMPWATCH_HTTP_TLS_CERT_FILE' }),
  blobConnectionString: key({ env: 'PUMPWATCH_BLOB_CONNECTION_STRING', schema: blobConnectionString, unit: 'text', secret: true, accepts: BLOB_CONNECTION_STRING_RULE, alsoRule: PLAIN_HTTP_RULE, description: 'Blob Storage connection string (sync target)' }),
  blobSasUrl: key({ env: 'PUMPWATCH_BLOB_SAS_URL', schema: blobSasUrl, unit: 'URL', secret: true, accepts: CONTAINER_SAS_URL_RULE, alsoRule: PLAIN_HTTP_RULE, description: 'container SAS URL (alternative to the connection string; used when both are set); permissions rcw (the sync uses read and write): one granting more (delete, list, …) or less is taken with a warning, PW_SYNC_SAS_PERMISSIONS, and in /status sync.credentialWarnings' }),
  blobContainer: key({ env: 'PUMPWATCH_BLOB_CONTAINER', schema: z.string().regex(CONTAINER_NAME, `a container name: ${CONTAINER_NAME_RULE}`).default('pumpwatch'), unit: 'name', accepts: CONTAINER_NAME_RULE, description: 'Blob container of PUMPWATCH_BLOB_CONNECTION_STRING; not used with PUMPWATCH_BLOB_SAS_URL, whose path names the container' }),
  deviceId: key({ env: 'PUMPWATCH_DEVICE_ID', schema: z.string().regex(DEVICE_ID, DEVICE_ID_RULE).optional(), unit: 'id', accepts: DEVICE_ID_RULE, description: 'device id in blob names; default: IOTEDGE_DEVICEID, else the DeviceId of PUMPWATCH_MODULE_CONNECTION_STRING, else the host name' }),
  simulate: key({ env: 'PUMPWATCH_SIMULATE', schema: int(0, 1000).optional(), unit: 'pumps', alsoRule: 'at most PUMPWATCH_MAX_PUMPS', description: 'simulated pumps; default 3 standalone, 0 otherwise' }),
  sync: key({ env: 'PUMPWATCH_SYNC', schema: z.enum(['auto', 'off']).default('auto'), unit: 'mode', description: 'off: never upload (the buffer still fills and evicts); auto: sync to the configured target, or to a local Azurite when standalone (a development dependency: where it is not installed, as in the container image, sync is off with a warning)' }),
  hub: key({ env: 'PUMPWATCH_HUB', schema: z.enum(['auto', 'off']).default('auto'), unit: 'mode', description: 'off: no IoT Edge client; auto: IoT Edge when configured, a local hub when standalone' }),
  simulateRateHz: key({ env: 'PUMPWATCH_SIMULATE_RATE_HZ', schema: numeric(num().min(MIN_SIMULATE_RATE_HZ, `at least ${MIN_SIMULATE_RATE_HZ} Hz (one reading every ${1 / MIN_SIMULATE_RATE_HZ} s)`).max(1000)).default(1), unit: 'Hz', description: 'readings per second of each simulated pump' }),
  simulateFaultIntervalMinutes: key({ env: 'PUMPWATCH_SIMULATE_FAULT_INTERVAL_MINUTES', schema: numeric(num().min(0.01).max(525600)).default(180), unit: 'min', description: 'a simulated pump\'s next random fault begins 10 minutes (or this, when shorter) plus on average this after the last one ended; a short one shows the demo\'s faults sooner' }),
  bufferMaxBytes: key({ env: 'PUMPWATCH_BUFFER_MAX_BYTES', schema: int(1 << 20, Number.MAX_SAFE_INTEGER).default(1073741824), unit: 'bytes', description: 'disk cap of the buffer' }),
  checkpointIntervalMs: key({ env: 'PUMPWATCH_CHECKPOINT_INTERVAL_MS', schema: int(100, 3_600_000).default(500), unit: 'ms', description: 'between two WAL checkpoints of the buffer (each copies the pages committed since the last one into the database file); on an SD card or eMMC 10000-30000 cuts the bytes written (see README "SD cards and write wear"); a reading is durable at its 202 either way, and past the log\'s share of the buffer cap a commit checkpoints by itself' }),
  syncIntervalSeconds: key({ env: 'PUMPWATCH_SYNC_INTERVAL_SECONDS', schema: int(1, 86400).default(30), unit: 's', description: 'sync attempts when idle' }),
  syncMaxBytesPerSecond: key({ env: 'PUMPWATCH_SYNC_MAX_BYTES_PER_SECOND', schema: int(0, Number.MAX_SAFE_INTEGER).default(0), unit: 'B/s', description: 'upload bandwidth cap for metered links (0 = none)' }),
  syncBatchMaxRows: key({ env: 'PUMPWATCH_SYNC_BATCH_MAX_ROWS', schema: int(1, 1_000_000).default(50_000), unit: 'rows', description: 'rows per uploaded blob at most' }),
  retentionHours: key({ env: 'PUMPWATCH_RETENTION_HOURS', schema: numeric(num().min(0)).default(72), unit: 'h', description: 'synced rows received longer ago than this are deleted (the technician page\'s history)' }),
  alertsMinIntervalSeconds: key({ env: 'PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS', schema: int(0, 86400).default(60), unit: 's', description: 'an open anomaly alarm repeats at most once per pump in this interval, and clears no sooner than this after its last alert' }),
  alertsSilentAfterSeconds: key({ env: 'PUMPWATCH_ALERTS_SILENT_AFTER_SECONDS', schema: numeric(num().min(0).max(604800).int().refine((v) => v === 0 || v >= 60, 'either 0 (off) or at least 60 s')).default(900), unit: 's', accepts: 'integer 60–604800, or 0 (off)', description: 'a pump that sent readings and then none (accepted or refused) for this long makes one pump-silent alert, and one pump-resumed when it sends again; 0 = off' }),
  alertsNotScoredAfterSeconds: key({ env: 'PUMPWATCH_ALERTS_NOT_SCORED_AFTER_SECONDS', schema: numeric(num().min(0).max(604800).int().refine((v) => v === 0 || v >= 60, 'either 0 (off) or at least 60 s')).default(900), unit: 's', accepts: 'integer 60–604800, or 0 (off)', description: 'a pump that keeps sending with none of its readings scored for this long (warm-up, a missing sensor, refused readings, no model, a failing buffer) makes one pump-not-scored message with the reason, and one pump-scored when a reading of it is scored again, and makes `/healthz` degraded (check `scoring`) while it lasts; a stopped pump is not counted; 0 = off' }),
  alertsHeartbeatSeconds: key({ env: 'PUMPWATCH_ALERTS_HEARTBEAT_SECONDS', schema: numeric(num().min(0).max(86400).int().refine((v) => v === 0 || v >= 60, 'either 0 (off) or at least 60 s')).default(0), unit: 's', accepts: 'integer 60–86400, or 0 (off)', description: 'an agent-heartbeat message on output alerts this often (the health and how many pumps are in each state), so a consumer can tell a gateway gone quiet; each is an IoT Hub message (600 s: 144 a day per gateway); 0 = off' }),
  alertsSensorMinIntervalSeconds: key({ env: 'PUMPWATCH_SENSOR_ALERTS_MIN_INTERVAL_SECONDS', schema: int(0, 604800).default(3600), unit: 's', description: 'quiet time of frozen-sensor alerts per pump and sensor: a sensor found frozen again within it after its last alert is counted, not alerted; still frozen when it ends, it is alerted then with the count' }),
  logLevel: key({ env: 'PUMPWATCH_LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), unit: 'level', description: 'pino log level' }),
  allowInsecureModelUrls: key({ env: 'PUMPWATCH_ALLOW_INSECURE_MODEL_URLS', schema: bool.default(false), unit: 'flag', description: 'let model downloads use plain http:// (development and tests only)' }),
  maxBodyBytes: key({ env: 'PUMPWATCH_MAX_BODY_BYTES', schema: int(1024, 1 << 30).default(16 * 1024 * 1024), unit: 'bytes', description: 'largest POST /readings body (413 above)' }),
  maxReadingsPerRequest: key({ env: 'PUMPWATCH_MAX_READINGS_PER_REQUEST', schema: int(1, 1_000_000).default(50_000), unit: 'readings', description: 'most readings in one request (413 above)' }),
  maxFutureSeconds: key({ env: 'PUMPWATCH_MAX_FUTURE_SECONDS', schema: int(0, 10 * 365 * 86400).default(86400), unit: 's', description: 'readings further ahead of the gateway clock are refused' }),
  maxPastSeconds: key({ env: 'PUMPWATCH_MAX_PAST_SECONDS', schema: int(0, 100 * 365 * 86400).default(365 * 86400), unit: 's', description: 'readings further behind the gateway clock are refused' }),
  maxPumps: key({ env: 'PUMPWATCH_MAX_PUMPS', schema: int(1, 10_000).default(100), unit: 'pumps', description: 'readings of more pumps than this are refused (each pump holds memory until a restart)' }),
  batchMaxReadings: key({ env: 'PUMPWATCH_BATCH_MAX_READINGS', schema: int(1, 100_000).default(8192), unit: 'readings', description: 'micro-batch size cap (one session.run and one transaction each)' }),
  defaultModel: key({ env: 'PUMPWATCH_DEFAULT_MODEL', schema: z.string().min(1).optional(), unit: 'path', description: 'model file loaded as `default` when no default is active; default: the one bundled with the agent' }),
  modelMaxBytes: key({ env: 'PUMPWATCH_MODEL_MAX_BYTES', schema: int(1024, 1 << 30).default(64 * 1024 * 1024), unit: 'bytes', description: 'largest model download' }),
  modelDownloadTimeoutSeconds: key({ env: 'PUMPWATCH_MODEL_DOWNLOAD_TIMEOUT_SECONDS', schema: int(1, 3600).default(120), unit: 's', description: 'model download timeout' }),
  moduleConnectionString: key({ env: 'PUMPWATCH_MODULE_CONNECTION_STRING', schema: optionalText, unit: 'text', secret: true, accepts: MODULE_CONNECTION_STRING_RULE, description: 'module connection string (outside IoT Edge; GatewayHostName=host:port reaches a gateway or a local hub); checked at start-up unless PUMPWATCH_HUB is off' }),
  moduleCaFile: key({ env: 'EdgeModuleCACertificateFile', schema: optionalText, unit: 'path', description: 'CA certificate (PEM) the module client trusts; set by IoT Edge, or for a module connection string' }),
  moduleId: key({ env: 'IOTEDGE_MODULEID', schema: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, MODULE_ID_RULE).default('pumpwatch'), unit: 'id', accepts: MODULE_ID_RULE, description: 'module id (set by IoT Edge; the local hub uses it standalone)' }),
  syncBatchMaxBytes: key({ env: 'PUMPWATCH_SYNC_BATCH_MAX_BYTES', schema: int(4096, 1 << 30).default(512 * 1024), unit: 'bytes', description: 'uncompressed JSON bytes per uploaded blob at most (a reading whose line alone is longer goes in a blob of its own; smaller blobs keep ingest latency low during a drain, see bench/sync)' }),
  syncThreadAboveRows: key({ env: 'PUMPWATCH_SYNC_THREAD_ABOVE_ROWS', schema: int(0, 100_000_000).default(2000), unit: 'rows', description: 'a sync cycle reads, encodes and uploads on its encoder thread (a second V8 isolate with its own storage client: about 25 MB of RSS while it runs, ended 30 s after its last batch) only when more rows than this wait at its start; smaller cycles, the steady trickle of a gateway, run on the main thread (blocks of the scoring thread: a 30-s cycle of 50 pumps 0.07–0.13 s in all, in pieces of a few ms; a full 512 kB blob, about 1 150 rows of 8 sensors since lines are counted at their widest (1 400 when measured), 15–30 ms in one piece; bench/steady --cycle); 0: always the thread' }),
  syncAnomalyContextRows: key({ env: 'PUMPWATCH_SYNC_ANOMALY_CONTEXT_ROWS', schema: int(0, 100_000).default(60), unit: 'rows', description: 'earlier rows of a pump uploaded with its anomaly, ahead of the backlog' }),
  syncCreateContainer: key({ env: 'PUMPWATCH_SYNC_CREATE_CONTAINER', schema: bool.default(true), unit: 'flag', description: 'create the blob container when it is missing (needs account rights)' }),
  syncBackoffMaxSeconds: key({ env: 'PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS', schema: int(1, 86400).default(300), unit: 's', description: 'cap of the exponential backoff after network or server errors' }),
  syncSlowRetrySeconds: key({ env: 'PUMPWATCH_SYNC_SLOW_RETRY_SECONDS', schema: int(1, 86400).default(900), unit: 's', description: 'retry pace after errors that need a person (credentials, missing container)' }),
  firstModelAfterHours: key({ env: 'PUMPWATCH_FIRST_MODEL_AFTER_HOURS', schema: numeric(num().min(0).max(720).refine((v) => v === 0 || v >= 1, 'either 0 (off) or at least 1 hour')).default(0), unit: 'h', accepts: 'number 0–720, 0 (off) or at least 1', description: 'a pump scored by the default model, that the cloud never named a model for, gets a first model fitted on the gateway (mset, as `train` fits) once its buffered readings span this many hours of running (or once its newest 7 days or 250 000 readings, all a fit reads, are there, or all that PUMPWATCH_RETENTION_HOURS leaves of them when at least 24 h, if they span less); used until the cloud names one (README, "A first model fitted on the gateway"); 0: off, and the first models in service go back to the default model' }),
  firstModelStoppedWhen: key({ env: 'PUMPWATCH_FIRST_MODEL_STOPPED_WHEN', schema: optionalText.superRefine((value, ctx) => {
    const problem = firstModelStoppedWhenProblem(value);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  }), unit: 'rule', accepts: '"FEATURE<NUMBER", several joined by "&", or none', description: 'the stopped-when rule first models are fitted with (as `pumpwatch-trainer --stopped-when`: readings while every named feature is below its number are stops, left out of the fit and of the running hours), instead of the default model\'s; set it when the pump\'s sensors are not the default model\'s (a rule naming a feature the pump does not send refuses its first model), e.g. "MotorCurrent_A<0.2"; none: fitted without a rule; unset: the default model\'s rule' }),
} as const;

export type ConfigKey = keyof typeof CONFIG_KEYS;

/**
 * The keys that change at run time: the module twin's desired setting sections (DESIGN.md "Module
 * twin") and the key behind each field. This is the one list of live keys: the twin accepts these
 * fields and no others, and the configuration reference marks these keys and no others. Each is
 * read from the configuration in force where it is used (every sync cycle, every request, every
 * download, every alert), so a new value applies without a restart. Every other key needs one
 * (the log level too: pino's child loggers take their level when they are made).
 */
export const TWIN_SETTINGS = {
  sync: {
    intervalSeconds: 'syncIntervalSeconds',
    maxBytesPerSecond: 'syncMaxBytesPerSecond',
    batchMaxRows: 'syncBatchMaxRows',
    batchMaxBytes: 'syncBatchMaxBytes',
    anomalyContextRows: 'syncAnomalyContextRows',
    backoffMaxSeconds: 'syncBackoffMaxSeconds',
    slowRetrySeconds: 'syncSlowRetrySeconds',
  },
  buffer: { maxBytes: 'bufferMaxBytes', retentionHours: 'retentionHours' },
  alerts: { minIntervalSeconds: 'alertsMinIntervalSeconds', sensorMinIntervalSeconds: 'alertsSensorMinIntervalSeconds', silentAfterSeconds: 'alertsSilentAfterSeconds', notScoredAfterSeconds: 'alertsNotScoredAfterSeconds', heartbeatSeconds: 'alertsHeartbeatSeconds' },
  ingest: { maxFutureSeconds: 'maxFutureSeconds', maxPastSeconds: 'maxPastSeconds' },
  modelDownloads: { maxBytes: 'modelMaxBytes', timeoutSeconds: 'modelDownloadTimeoutSeconds' },
  firstModel: { afterHours: 'firstModelAfterHours', stoppedWhen: 'firstModelStoppedWhen' },
} as const satisfies Record<string, Record<string, ConfigKey>>;

/** The twin field (`section.field`) of each live key. */
const TWIN_FIELD_OF: ReadonlyMap<ConfigKey, string> = new Map(
  Object.entries(TWIN_SETTINGS).flatMap(([section, fields]) => Object.entries(fields).map(([field, key]) => [key as ConfigKey, `${section}.${field}`] as const)),
);
/**
 * Where a key is set, for a refusal bounded by it (`PUMPWATCH_MAX_PAST_SECONDS, twin
 * ingest.maxPastSeconds`): whoever reads the refusal learns which setting to change.
 */
export function settingNames(key: ConfigKey): string {
  const twin = TWIN_FIELD_OF.get(key);
  return twin === undefined ? CONFIG_KEYS[key].env : `${CONFIG_KEYS[key].env}, twin ${twin}`;
}

export type Config = { [K in ConfigKey]: z.output<(typeof CONFIG_KEYS)[K]['schema']> } & {
  /** True when neither a blob target nor IoT Edge is configured: simulated pumps, local Azurite and hub. */
  standalone: boolean;
  /** The device id in force (configured, from IoT Edge, or the host name). */
  resolvedDeviceId: string;
  /** Simulated pumps in force (configured, or 3 standalone / 0 otherwise). */
  resolvedSimulate: number;
  /** IoT Edge (or a module connection string) is configured. */
  edge: boolean;
  /** PUMPWATCH_* variables set that no key reads (a misspelling, or a newer image's key), each with the nearest key. */
  unknownVariables: readonly UnknownVariable[];
};

export class ConfigError extends Error {
  readonly code = 'PW_CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

function describeValue(spec: KeySpec<z.ZodType>, raw: string): string {
  return spec.secret ? '(value hidden)' : JSON.stringify(raw);
}

/** Parses values for some keys (from the environment or a twin patch); throws ConfigError naming each bad one. */
export function parseKeys(raw: Partial<Record<ConfigKey, string | undefined>>, label: (k: ConfigKey) => string): Partial<Record<ConfigKey, unknown>> {
  const out: Partial<Record<ConfigKey, unknown>> = {};
  const problems: string[] = [];
  for (const [k, spec] of Object.entries(CONFIG_KEYS) as Array<[ConfigKey, KeySpec<z.ZodType>]>) {
    const value = raw[k];
    const parsed = spec.schema.safeParse(value === '' ? undefined : value);
    if (parsed.success) out[k] = parsed.data;
    else problems.push(`${label(k)}=${describeValue(spec, value ?? '')}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/** Reads the whole configuration from environment variables. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Partial<Record<ConfigKey, string | undefined>> = {};
  for (const [k, spec] of Object.entries(CONFIG_KEYS) as Array<[ConfigKey, KeySpec<z.ZodType>]>) raw[k] = env[spec.env];
  const values = parseKeys(raw, (k) => CONFIG_KEYS[k].env) as Omit<Config, 'standalone' | 'resolvedDeviceId' | 'resolvedSimulate' | 'edge' | 'unknownVariables'>;
  const edge = Boolean(env.IOTEDGE_WORKLOADURI || env.EdgeHubConnectionString || env.PUMPWATCH_MODULE_CONNECTION_STRING);
  const standalone = !edge && !values.blobConnectionString && !values.blobSasUrl;
  // CONFIG_KEYS.simulate.alsoRule says this rule in the reference.
  if (values.simulate !== undefined && values.simulate > values.maxPumps) {
    throw new ConfigError([`PUMPWATCH_SIMULATE=${values.simulate}: more simulated pumps than PUMPWATCH_MAX_PUMPS (${values.maxPumps}) allows; raise it or simulate fewer`]);
  }
  // CONFIG_KEYS.httpTls*File.alsoRule say this rule in the reference.
  if ((values.httpTlsCertFile === undefined) !== (values.httpTlsKeyFile === undefined)) {
    const [set, missing] = values.httpTlsCertFile === undefined ? [CONFIG_KEYS.httpTlsKeyFile, CONFIG_KEYS.httpTlsCertFile] : [CONFIG_KEYS.httpTlsCertFile, CONFIG_KEYS.httpTlsKeyFile];
    throw new ConfigError([`${missing.env} is not set, but ${set.env} is: set both for HTTPS, or neither for plain HTTP`]);
  }
  // The string configuredSource (agent/edge/client.ts) connects with: IoT Edge's own variables
  // (IOTEDGE_*, EdgeHubConnectionString) are read by the SDK, and nothing is read with the hub off.
  let moduleDeviceId: string | undefined;
  if (values.hub !== 'off' && values.moduleConnectionString !== undefined) {
    const { problem, deviceId } = checkModuleConnectionString(values.moduleConnectionString);
    if (problem !== null) throw new ConfigError([`${CONFIG_KEYS.moduleConnectionString.env}=${describeValue(CONFIG_KEYS.moduleConnectionString, values.moduleConnectionString)}: ${problem}`]);
    moduleDeviceId = deviceId;
  }
  // Read by configuredSource with a module connection string, by the SDK's fromEnvironment with
  // EdgeHubConnectionString (or IotHubConnectionString); IoT Edge's workload API brings its own CA.
  const caRead = values.moduleConnectionString !== undefined || Boolean(env.EdgeHubConnectionString || env.IotHubConnectionString);
  if (values.hub !== 'off' && values.moduleCaFile !== undefined && caRead) {
    const problem = moduleCaProblem(values.moduleCaFile);
    if (problem !== null) throw new ConfigError([`${CONFIG_KEYS.moduleCaFile.env}=${JSON.stringify(values.moduleCaFile)}: ${problem} (the CA certificate the module client trusts)`]);
  }
  // The module's own device before the host name: under `docker run` the host name is the
  // container's id, which changes whenever the container is made again, and the blobs' names with it.
  const resolvedDeviceId = values.deviceId ?? env.IOTEDGE_DEVICEID ?? moduleDeviceId ?? hostname();
  if (!DEVICE_ID.test(resolvedDeviceId)) {
    const from = env.IOTEDGE_DEVICEID !== undefined ? 'IOTEDGE_DEVICEID' : moduleDeviceId !== undefined ? `the DeviceId of ${CONFIG_KEYS.moduleConnectionString.env}` : 'the host name';
    throw new ConfigError([`${from} "${resolvedDeviceId}" cannot name the gateway's blobs (${DEVICE_ID_RULE}); set PUMPWATCH_DEVICE_ID to an id that can`]);
  }
  return {
    ...values,
    edge,
    standalone,
    resolvedDeviceId,
    resolvedSimulate: values.simulate ?? (standalone ? 3 : 0),
    unknownVariables: unknownVariables(env, Object.values(CONFIG_KEYS).map((spec) => spec.env)),
  };
}

/**
 * The start-up warning for a PUMPWATCH_* variable no key reads: a warning, not a refusal (exit 2),
 * so a manifest written for a newer image (a key this one does not know yet) does not crash-loop
 * the module on an older one (README, "Configuration"). Names only: a misspelt secret's value is
 * never echoed.
 */
export function unknownVariableWarning(v: UnknownVariable): string {
  const hint = v.nearest === null ? 'no setting has a similar name (pumpwatch-agent --help lists them)' : `did you mean ${v.nearest}?`;
  return `${v.name} is not a setting of this agent and is ignored (a misspelling, or a setting of a newer version): ${hint}`;
}

/**
 * The configuration reference as rows (README table, `pumpwatch-agent --help`); `twin` is the
 * desired-property field that changes the key at run time, null when it needs a restart;
 * `accepts` is what a value must be, read from the schema that enforces it (for the environment
 * and the module twin alike), so the reference cannot drift from the check.
 */
export function configReference(): Array<{ env: string; default: string; unit: string; accepts: string; twin: string | null; description: string }> {
  return (Object.entries(CONFIG_KEYS) as Array<[ConfigKey, KeySpec<z.ZodType>]>).map(([k, spec]) => {
    const d = spec.schema.safeParse(undefined);
    const accepts = spec.accepts ?? describeAccepted(spec.schema);
    return {
      env: spec.env,
      default: d.success && d.data !== undefined ? String(d.data) : '—',
      unit: spec.unit,
      accepts: spec.alsoRule ? `${accepts}, ${spec.alsoRule}` : accepts,
      twin: TWIN_FIELD_OF.get(k) ?? null,
      description: spec.description,
    };
  });
}

/** The schema a key's value is checked by, under its default, optional and parsing wrappers. */
function checkedSchema(schema: z.ZodType): z.ZodType {
  for (;;) {
    if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
    // numeric(): text to number, then the number's checks; bool: the enum, then to a boolean.
    else if (schema instanceof z.ZodPipe) schema = (schema.out instanceof z.ZodTransform ? schema.in : schema.out) as z.ZodType;
    else return schema;
  }
}

/** A number key's range (`integer 1–86400`, `number ≥ 0`), an enum's choices, or `—` for free text. */
function describeAccepted(schema: z.ZodType): string {
  const checked = checkedSchema(schema);
  if (checked instanceof z.ZodEnum) return (checked.options as string[]).join(', ');
  if (!(checked instanceof z.ZodNumber)) return '—';
  const kind = checked.isInt ? 'integer' : 'number';
  const min = checked.minValue;
  // Number.MAX_SAFE_INTEGER too (a byte count's "no limit"): the twin refuses a value past it, naming it.
  const max = checked.maxValue !== null && Number.isFinite(checked.maxValue) ? checked.maxValue : null;
  if (min !== null && max !== null) return `${kind} ${min}–${max}`;
  if (min !== null) return `${kind} ≥ ${min}`;
  return max !== null ? `${kind} ≤ ${max}` : kind;
}
