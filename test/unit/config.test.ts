import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configReference, loadConfig } from '../../agent/config.js';
import { parseSection, unknownSettingsReason } from '../../agent/edge/desired.js';
import { syncSettings } from '../../agent/wiring/sync.js';
import { THREAD_ABOVE_ROWS } from '../../sync/worker.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('the agent configuration', () => {
  it('refuses a bad value naming the variable and the value, and never echoes a secret', () => {
    expect(problems({ PUMPWATCH_HTTP_PORT: '70000' })).toEqual([expect.stringMatching(/^PUMPWATCH_HTTP_PORT="70000": /)]);
    const secret = 'AccountName=x;AccountKey=c2VjcmV0;';
    const found = problems({ PUMPWATCH_BLOB_SAS_URL: secret, PUMPWATCH_SYNC: 'sometimes' });
    expect(found).toEqual(['PUMPWATCH_BLOB_SAS_URL=(value hidden): Invalid URL', expect.stringMatching(/^PUMPWATCH_SYNC="sometimes": /)]);
    expect(found.join(' ')).not.toContain('c2VjcmV0');
  });

  it('refuses a malformed Blob Storage connection string at start-up, without echoing it, and takes the forms the SDK takes', () => {
    for (const bad of ['garbage', 'AccountName=x;AccountKey=c2VjcmV0', 'BlobEndpoint=https://x.blob.core.windows.net;AccountName=x;AccountKey=not base64!! c2VjcmV0']) {
      const found = problems({ PUMPWATCH_BLOB_CONNECTION_STRING: bad });
      expect(found, bad).toEqual([expect.stringMatching(/^PUMPWATCH_BLOB_CONNECTION_STRING=\(value hidden\): not a Blob Storage connection string/)]);
      expect(found.join(' ')).not.toContain('c2VjcmV0');
    }
    for (const ok of [
      'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net',
      'BlobEndpoint=https://x.blob.core.windows.net;SharedAccessSignature=sv=2024-01-01&sig=abc',
      'UseDevelopmentStorage=true',
    ]) expect(problems({ PUMPWATCH_BLOB_CONNECTION_STRING: ok }), ok).toEqual([]);
  });

  it('refuses a blob target over plain http to Azure\'s public endpoints (exit 2), naming the variable, never the secret, and keeps http on the gateway\'s network', () => {
    const sas = 'sv=2025-01-05&sr=c&sp=rcw&sig=SECRETSIG%3D';
    for (const [name, bad] of [
      ['PUMPWATCH_BLOB_SAS_URL', `http://acct.blob.core.windows.net/pumpwatch?${sas}`],
      ['PUMPWATCH_BLOB_SAS_URL', `http://acct.blob.core.chinacloudapi.cn/pumpwatch?${sas}`],
      ['PUMPWATCH_BLOB_CONNECTION_STRING', 'DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net'],
      ['PUMPWATCH_BLOB_CONNECTION_STRING', 'DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.usgovcloudapi.net'],
      ['PUMPWATCH_BLOB_CONNECTION_STRING', `BlobEndpoint=http://acct.blob.core.windows.net;SharedAccessSignature=${sas}`],
    ] as const) {
      const found = problems({ [name]: bad });
      expect(found, bad).toEqual([expect.stringMatching(new RegExp(`^${name}=\\(value hidden\\): plain http:// to Azure's public endpoint \\(a host name ending in core\\.[a-z.]+\\) would send .* in clear: use https://`))]);
      expect(found.join(' ')).not.toMatch(/SECRETSIG|c2VjcmV0|acct/);
    }
    for (const [name, ok] of [
      ['PUMPWATCH_BLOB_SAS_URL', `http://azureblobstorage:11002/edgeaccount/pumpwatch?${sas}`],
      ['PUMPWATCH_BLOB_SAS_URL', `http://192.168.10.5:10000/devstoreaccount1/pumpwatch?${sas}`],
      ['PUMPWATCH_BLOB_CONNECTION_STRING', 'DefaultEndpointsProtocol=http;AccountName=edgeaccount;AccountKey=c2VjcmV0;BlobEndpoint=http://azureblobstorage:11002/edgeaccount;'],
      ['PUMPWATCH_BLOB_CONNECTION_STRING', 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;'],
    ] as const) expect(problems({ [name]: ok }), ok).toEqual([]);
  });

  it('refuses a module connection string the module client cannot sign in with, naming the missing part, without echoing it', () => {
    const key = 'c2VjcmV0S2V5';
    const cases: Array<[string, RegExp]> = [
      [`HostName=hub.azure-devices.net;SharedAccessKey=${key}`, /: not a module connection string: The connection string is missing the property: DeviceId; expected HostName=…;DeviceId=…;ModuleId=…;SharedAccessKey=…/],
      [`DeviceId=gw-1;ModuleId=pumpwatch;SharedAccessKey=${key}`, /: not a module connection string: The connection string is missing the property: HostName; /],
      [`HostName=hub.azure-devices.net;DeviceId=gw-1;SharedAccessKey=${key}`, /: not a module connection string: it has no ModuleId: a device's connection string\? /],
      [`HostName=hub.azure-devices.net;DeviceId=gw-1;ModuleId=pumpwatch;SharedAccessSignature=SharedAccessSignature sr=x&sig=${key}`, /: not a module connection string the agent can use: it has no SharedAccessKey, /],
      [`HostName=hub.azure-devices.net;DeviceId=gw-1;ModuleId=pumpwatch`, /: not a module connection string: The connection string must contain either a SharedAccessKey, SharedAccessSignature or x509=true; /],
    ];
    for (const [bad, reason] of cases) {
      const found = problems({ PUMPWATCH_MODULE_CONNECTION_STRING: bad });
      expect(found, bad).toEqual([expect.stringMatching(/^PUMPWATCH_MODULE_CONNECTION_STRING=\(value hidden\): /)]);
      expect(found[0], bad).toMatch(reason);
      expect(found.join(' ')).not.toContain(key);
    }
    // The local hub's form (agent/local-hub: with GatewayHostName), and IoT Hub's.
    for (const ok of [
      `HostName=localhub;DeviceId=gw-1;ModuleId=pumpwatch;SharedAccessKey=${key};GatewayHostName=localhost:8883`,
      `HostName=hub.azure-devices.net;DeviceId=gw-1;ModuleId=pumpwatch;SharedAccessKey=${key}`,
    ]) expect(problems({ PUMPWATCH_MODULE_CONNECTION_STRING: ok }), ok).toEqual([]);
  });

  it('refuses an EdgeModuleCACertificateFile the module client cannot read at start-up, naming the variable and the file, where the client would read it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-ca-'));
    try {
      const notPem = join(dir, 'ca.der');
      writeFileSync(notPem, Buffer.from([0x30, 0x82, 0x01, 0x0a]));
      const pem = join(dir, 'ca.pem');
      writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      const moduleString = { PUMPWATCH_MODULE_CONNECTION_STRING: 'HostName=hub.azure-devices.net;DeviceId=gw-1;ModuleId=pumpwatch;SharedAccessKey=c2VjcmV0S2V5' };
      const edgeHubString = { EdgeHubConnectionString: 'HostName=hub.azure-devices.net;DeviceId=gw-1;ModuleId=pumpwatch;SharedAccessKey=c2VjcmV0S2V5' };
      for (const [file, why] of [
        ['/nonexistent.pem', 'no such file'],
        [dir, 'is a folder, not a PEM certificate file'],
        [notPem, 'not a PEM certificate (no -----BEGIN CERTIFICATE----- line)'],
      ] as const) {
        for (const source of [moduleString, edgeHubString] as Array<Record<string, string>>) {
          expect(problems({ ...source, EdgeModuleCACertificateFile: file })).toEqual([`EdgeModuleCACertificateFile=${JSON.stringify(file)}: ${why} (the CA certificate the module client trusts)`]);
        }
      }
      expect(problems({ ...moduleString, EdgeModuleCACertificateFile: pem })).toEqual([]);
      // Not read with the hub off, nor inside IoT Edge's workload API (which brings its own CA).
      expect(problems({ ...moduleString, PUMPWATCH_HUB: 'off', EdgeModuleCACertificateFile: '/nonexistent.pem' })).toEqual([]);
      expect(problems({ IOTEDGE_WORKLOADURI: 'unix:///var/run/iotedge/workload.sock', EdgeModuleCACertificateFile: '/nonexistent.pem' })).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks the module connection string only when it is the one the agent connects with', () => {
    // With the hub off no client is made; IoT Edge's own variables are read by the SDK, not checked here.
    expect(problems({ PUMPWATCH_HUB: 'off', PUMPWATCH_MODULE_CONNECTION_STRING: 'HostName=hub.azure-devices.net' })).toEqual([]);
    expect(loadConfig({ IOTEDGE_WORKLOADURI: 'unix:///var/run/iotedge/workload.sock', IOTEDGE_DEVICEID: 'gw-1', IOTEDGE_MODULEID: 'pumpwatch' }).edge).toBe(true);
    // Set beside IoT Edge's variables, the string is what the agent connects with (agent/edge/client.ts): checked.
    expect(problems({ IOTEDGE_WORKLOADURI: 'unix:///var/run/iotedge/workload.sock', PUMPWATCH_MODULE_CONNECTION_STRING: 'HostName=hub.azure-devices.net' })).toEqual([
      expect.stringMatching(/^PUMPWATCH_MODULE_CONNECTION_STRING=\(value hidden\): not a module connection string: The connection string is missing the property: DeviceId; /),
    ]);
  });

  it('takes the status endpoint certificate and key together or not at all, naming the one missing', () => {
    expect(problems({ PUMPWATCH_HTTP_TLS_CERT_FILE: '/tls/cert.pem' })).toEqual(['PUMPWATCH_HTTP_TLS_KEY_FILE is not set, but PUMPWATCH_HTTP_TLS_CERT_FILE is: set both for HTTPS, or neither for plain HTTP']);
    expect(problems({ PUMPWATCH_HTTP_TLS_KEY_FILE: '/tls/key.pem', PUMPWATCH_HTTP_TLS_CERT_FILE: '' })).toEqual(['PUMPWATCH_HTTP_TLS_CERT_FILE is not set, but PUMPWATCH_HTTP_TLS_KEY_FILE is: set both for HTTPS, or neither for plain HTTP']);
    expect(loadConfig({ PUMPWATCH_HTTP_TLS_CERT_FILE: '/tls/cert.pem', PUMPWATCH_HTTP_TLS_KEY_FILE: '/tls/key.pem' })).toMatchObject({ httpTlsCertFile: '/tls/cert.pem', httpTlsKeyFile: '/tls/key.pem' });
    expect(loadConfig({})).toMatchObject({ httpTlsCertFile: undefined, httpTlsKeyFile: undefined });
  });

  it('takes only container names Blob Storage accepts', () => {
    for (const ok of ['pumpwatch', 'abc', 'a-b-c', 'x1-2y', 'a'.repeat(63)]) expect(problems({ PUMPWATCH_BLOB_CONTAINER: ok }), ok).toEqual([]);
    for (const bad of ['ab', 'a--b', '-ab', 'ab-', 'Pumps', 'a_b', 'a'.repeat(64)]) {
      expect(problems({ PUMPWATCH_BLOB_CONTAINER: bad }), bad).toEqual([expect.stringMatching(/^PUMPWATCH_BLOB_CONTAINER=.*: a container name: /)]);
    }
  });

  it('checks the device id it falls back to (IoT Edge\'s) by the rule PUMPWATCH_DEVICE_ID follows, and names the way out', () => {
    expect(loadConfig({ IOTEDGE_DEVICEID: 'gw-1.north' }).resolvedDeviceId).toBe('gw-1.north');
    expect(problems({ IOTEDGE_DEVICEID: 'gw#1 (north)' })).toEqual([
      'IOTEDGE_DEVICEID "gw#1 (north)" cannot name the gateway\'s blobs (letters, digits, . _ : - (at most 128)); set PUMPWATCH_DEVICE_ID to an id that can',
    ]);
    expect(loadConfig({ IOTEDGE_DEVICEID: 'gw#1 (north)', PUMPWATCH_DEVICE_ID: 'gw-1-north' }).resolvedDeviceId).toBe('gw-1-north');
    expect(problems({ PUMPWATCH_DEVICE_ID: 'gw#1' })).toEqual([expect.stringMatching(/^PUMPWATCH_DEVICE_ID="gw#1": letters, digits/)]);
  });

  it('takes the device id of a module connection string before the host name (under docker run, the container id that changes with each new container)', () => {
    const key = Buffer.alloc(32, 3).toString('base64');
    const conn = (device: string) => `HostName=hub.example;DeviceId=${device};ModuleId=pumpwatch;SharedAccessKey=${key}`;
    expect(loadConfig({ PUMPWATCH_MODULE_CONNECTION_STRING: conn('gw-17') }).resolvedDeviceId).toBe('gw-17');
    expect(loadConfig({ PUMPWATCH_MODULE_CONNECTION_STRING: conn('gw-17'), PUMPWATCH_DEVICE_ID: 'gw-own' }).resolvedDeviceId).toBe('gw-own');
    expect(loadConfig({ PUMPWATCH_MODULE_CONNECTION_STRING: conn('gw-17'), IOTEDGE_DEVICEID: 'gw-edge' }).resolvedDeviceId).toBe('gw-edge');
    // with the hub off the string is not read, nor its device id
    expect(loadConfig({ PUMPWATCH_MODULE_CONNECTION_STRING: conn('gw-17'), PUMPWATCH_HUB: 'off' }).resolvedDeviceId).toBe(hostname());
    expect(problems({ PUMPWATCH_MODULE_CONNECTION_STRING: conn('gw 17') })).toEqual([
      'the DeviceId of PUMPWATCH_MODULE_CONNECTION_STRING "gw 17" cannot name the gateway\'s blobs (letters, digits, . _ : - (at most 128)); set PUMPWATCH_DEVICE_ID to an id that can',
    ]);
  });

  it('refuses more simulated pumps than the pump limit takes', () => {
    expect(problems({ PUMPWATCH_SIMULATE: '150' })).toEqual(['PUMPWATCH_SIMULATE=150: more simulated pumps than PUMPWATCH_MAX_PUMPS (100) allows; raise it or simulate fewer']);
    expect(problems({ PUMPWATCH_SIMULATE: '150', PUMPWATCH_MAX_PUMPS: '150' })).toEqual([]);
  });

  it('names the twin field of every key that changes at run time, and of no other', () => {
    const live = Object.fromEntries(configReference().filter((k) => k.twin).map((k) => [k.env, k.twin]));
    expect(live).toMatchObject({ PUMPWATCH_SYNC_INTERVAL_SECONDS: 'sync.intervalSeconds', PUMPWATCH_MAX_PAST_SECONDS: 'ingest.maxPastSeconds', PUMPWATCH_MODEL_MAX_BYTES: 'modelDownloads.maxBytes' });
    // Read once at start-up: a twin field would promise what the agent does not do.
    for (const env of ['PUMPWATCH_LOG_LEVEL', 'PUMPWATCH_HTTP_PORT', 'PUMPWATCH_MAX_BODY_BYTES', 'PUMPWATCH_BATCH_MAX_READINGS']) expect(live[env], env).toBeUndefined();
  });
  it('refuses a blank number instead of taking it as 0, and takes a decimal with spaces around it', () => {
    expect(problems({ PUMPWATCH_HTTP_PORT: ' ' })).toEqual(['PUMPWATCH_HTTP_PORT=" ": expected a number, got an empty or blank string']);
    expect(problems({ PUMPWATCH_RETENTION_HOURS: '\t' })).toEqual([expect.stringMatching(/^PUMPWATCH_RETENTION_HOURS=.*: expected a number/)]);
    expect(problems({ PUMPWATCH_MAX_PAST_SECONDS: '0x10' })).toEqual([expect.stringMatching(/^PUMPWATCH_MAX_PAST_SECONDS="0x10": expected a number/)]);
    expect(loadConfig({ PUMPWATCH_HTTP_PORT: ' 8081 ', PUMPWATCH_RETENTION_HOURS: '1.5e1' })).toMatchObject({ httpPort: 8081, retentionHours: 15 });
    expect(loadConfig({ PUMPWATCH_HTTP_PORT: '' }).httpPort).toBe(8080); // set but empty: the default, as unset
  });

  it("names the key's own maximum for a huge integer, not JavaScript's safe-integer limit", () => {
    expect(problems({ PUMPWATCH_HTTP_PORT: '1e20' })).toEqual(['PUMPWATCH_HTTP_PORT="1e20": Too big: expected number to be <=65535']);
    expect(parseSection('ingest', { maxPastSeconds: 2 ** 60 })).toEqual({ error: expect.stringMatching(/^ingest\.maxPastSeconds=1152921504606847000: Too big: expected number to be <=\d+$/) });
    expect(parseSection('ingest', { maxPastSeconds: 2 ** 60 })).not.toEqual({ error: expect.stringContaining('9007199254740991') });
    expect(problems({ PUMPWATCH_HTTP_PORT: '80.5' })).toEqual(['PUMPWATCH_HTTP_PORT="80.5": Invalid input: expected int, received number']);
  });

  it('takes PUMPWATCH_FIRST_MODEL_AFTER_HOURS as 0 (off, the default) or 1 to 720 hours, and refuses anything else naming the variable', () => {
    expect(loadConfig({}).firstModelAfterHours).toBe(0);
    expect(loadConfig({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '24' }).firstModelAfterHours).toBe(24);
    expect(loadConfig({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '1.5' }).firstModelAfterHours).toBe(1.5);
    expect(loadConfig({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '720' }).firstModelAfterHours).toBe(720);
    expect(problems({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '0.5' })).toEqual(['PUMPWATCH_FIRST_MODEL_AFTER_HOURS="0.5": either 0 (off) or at least 1 hour']);
    expect(problems({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '721' })).toEqual([expect.stringMatching(/^PUMPWATCH_FIRST_MODEL_AFTER_HOURS="721": Too big: expected number to be <=720$/)]);
    expect(problems({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '-1' })).toEqual([expect.stringMatching(/^PUMPWATCH_FIRST_MODEL_AFTER_HOURS="-1": Too small/)]);
    expect(problems({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: 'a day' })).toEqual(['PUMPWATCH_FIRST_MODEL_AFTER_HOURS="a day": expected a number, got text that is not a decimal number']);
    // Live: the module twin's firstModel.afterHours, checked by the same schema.
    expect(configReference().find((k) => k.env === 'PUMPWATCH_FIRST_MODEL_AFTER_HOURS')?.twin).toBe('firstModel.afterHours');
    expect(parseSection('firstModel', { afterHours: 2 })).toEqual({ values: { firstModelAfterHours: 2 } });
    expect(parseSection('firstModel', { afterHours: 0.2 })).toEqual({ error: 'firstModel.afterHours=0.2: either 0 (off) or at least 1 hour' });
    expect(parseSection('firstModel', { hours: 2 })).toEqual({ values: {}, unknown: ['firstModel.hours'] });
  });

  it('takes PUMPWATCH_FIRST_MODEL_STOPPED_WHEN as a --stopped-when rule or none (twin firstModel.stoppedWhen), and refuses anything else naming the variable', () => {
    expect(loadConfig({}).firstModelStoppedWhen).toBeUndefined();
    expect(loadConfig({ PUMPWATCH_FIRST_MODEL_STOPPED_WHEN: 'MotorCurrent_A<5 & Flow_m3h<1' }).firstModelStoppedWhen).toBe('MotorCurrent_A<5 & Flow_m3h<1');
    expect(loadConfig({ PUMPWATCH_FIRST_MODEL_STOPPED_WHEN: 'none' }).firstModelStoppedWhen).toBe('none');
    expect(problems({ PUMPWATCH_FIRST_MODEL_STOPPED_WHEN: 'MotorCurrent_A>5' })).toEqual([expect.stringMatching(/^PUMPWATCH_FIRST_MODEL_STOPPED_WHEN="MotorCurrent_A>5": the operator is ">", only "<" is supported/)]);
    expect(problems({ PUMPWATCH_FIRST_MODEL_STOPPED_WHEN: 'MotorCurrent_A<low' })).toEqual([expect.stringMatching(/^PUMPWATCH_FIRST_MODEL_STOPPED_WHEN="MotorCurrent_A<low": "low" is not a finite number/)]);
    expect(parseSection('firstModel', { stoppedWhen: 'MotorCurrent_A<5' })).toEqual({ values: { firstModelStoppedWhen: 'MotorCurrent_A<5' } });
    expect(parseSection('firstModel', { stoppedWhen: 'A<1 & A<2' })).toEqual({ error: expect.stringMatching(/^firstModel\.stoppedWhen="A<1 & A<2": the feature "A" is named twice/) });
    expect(configReference().find((k) => k.env === 'PUMPWATCH_FIRST_MODEL_STOPPED_WHEN')?.twin).toBe('firstModel.stoppedWhen');
  });

  it('gives the sync the row count above which a cycle uses its encoder thread (default 2 000; 0: always)', () => {
    expect(syncSettings(loadConfig({})).threadAboveRows).toBe(THREAD_ABOVE_ROWS);
    expect(THREAD_ABOVE_ROWS).toBe(2000);
    expect(syncSettings(loadConfig({ PUMPWATCH_SYNC_THREAD_ABOVE_ROWS: '0' })).threadAboveRows).toBe(0);
    expect(() => loadConfig({ PUMPWATCH_SYNC_THREAD_ABOVE_ROWS: '-1' })).toThrow(/PUMPWATCH_SYNC_THREAD_ABOVE_ROWS/);
  });

  it('takes the status token without the spaces or newline at its ends, and refuses one blank or that a header cannot carry, never echoing it', () => {
    expect(loadConfig({ PUMPWATCH_STATUS_TOKEN: ' s3cret tok\n' }).statusToken).toBe('s3cret tok');
    expect(loadConfig({ PUMPWATCH_STATUS_TOKEN: 's3cret' }).statusToken).toBe('s3cret');
    // the empty string counts as unset, as for every variable
    expect(loadConfig({ PUMPWATCH_STATUS_TOKEN: '' }).statusToken).toBeUndefined();
    for (const [bad, why] of [
      ['  \n', /blank/],
      ['s3cret\ttok', /printable ASCII/],
      ['s3cret\ntok', /printable ASCII/],
      ['s3crét', /printable ASCII/],
    ] as const) {
      const found = problems({ PUMPWATCH_STATUS_TOKEN: bad });
      expect(found, JSON.stringify(bad)).toEqual([expect.stringMatching(/^PUMPWATCH_STATUS_TOKEN=\(value hidden\): /)]);
      expect(found[0], JSON.stringify(bad)).toMatch(why);
      if (bad.trim() !== '') expect(found[0]).not.toContain('s3cr');
    }
  });

  it('refuses a simulated rate so slow that its timer would overflow into one reading a millisecond', () => {
    expect(problems({ PUMPWATCH_SIMULATE_RATE_HZ: '1e-7' })).toEqual(['PUMPWATCH_SIMULATE_RATE_HZ="1e-7": at least 0.001 Hz (one reading every 1000 s)']);
    expect(loadConfig({ PUMPWATCH_SIMULATE_RATE_HZ: '0.001' }).simulateRateHz).toBe(0.001);
  });
});

describe('a live setting from the module twin', () => {
  it('is refused with its reason when empty, blank, a boolean, an array or an object, never taken as 0 or 1', () => {
    for (const bad of ['', ' ', false, true, [], [5], {}]) {
      expect(parseSection('ingest', { maxPastSeconds: bad }), JSON.stringify(bad)).toEqual({ error: expect.stringMatching(/^ingest\.maxPastSeconds=.*: expected a number, got /) });
      expect(parseSection('buffer', { retentionHours: bad }), JSON.stringify(bad)).toEqual({ error: expect.stringMatching(/^buffer\.retentionHours=.*: expected a number, got /) });
    }
    expect(parseSection('sync', { intervalSeconds: true })).toEqual({ error: 'sync.intervalSeconds=true: expected a number, got a boolean' });
  });

  it('takes a JSON number, or a decimal string as the environment would', () => {
    expect(parseSection('buffer', { retentionHours: 0 })).toEqual({ values: { retentionHours: 0 } });
    expect(parseSection('ingest', { maxPastSeconds: 3600 })).toEqual({ values: { maxPastSeconds: 3600 } });
    expect(parseSection('ingest', { maxPastSeconds: ' 3600 ' })).toEqual({ values: { maxPastSeconds: 3600 } });
  });

  it("applies the known fields of a section beside one this agent version does not know, which is listed apart", () => {
    expect(parseSection('alerts', { minIntervalSeconds: 120, quietHours: 3 })).toEqual({ values: { alertsMinIntervalSeconds: 120 }, unknown: ['alerts.quietHours'] });
    expect(unknownSettingsReason('alerts', ['alerts.quietHours'], 0, 20)).toBe(
      'alerts.quietHours: unknown setting, not known to this agent version, not applied (known: minIntervalSeconds, sensorMinIntervalSeconds, silentAfterSeconds, notScoredAfterSeconds, heartbeatSeconds)',
    );
    expect(unknownSettingsReason('firstModel', ['firstModel.a'], 2, 20)).toBe(
      'firstModel.a and 2 more: unknown settings, not known to this agent version, not applied (2 named in the log only: more than 20 unknown keys are desired) (known: afterHours, stoppedWhen)',
    );
    expect(unknownSettingsReason('firstModel', [], 2, 20)).toMatch(/^2 settings of firstModel: unknown settings, not known to this agent version, not applied \(2 named in the log only/);
  });

  it('is refused naming every invalid value of its section, so one round-trip fixes them all', () => {
    expect(parseSection('buffer', { maxBytes: '1GB', retentionHours: -1 })).toEqual({ error: expect.stringMatching(/^buffer\.maxBytes="1GB": .+; buffer\.retentionHours=-1: .+$/) });
    // An unknown field does not refuse the section; a known one with a bad value does, whole.
    expect(parseSection('sync', { intervalSecs: 30, batchRows: 10, backoffMaxSeconds: 'x' })).toEqual({
      error: expect.stringMatching(/^sync\.backoffMaxSeconds="x": /),
      unknown: ['sync.intervalSecs', 'sync.batchRows'],
    });
  });
});
