import { describe, expect, it } from 'vitest';
import { ConfigError, configReference, loadConfig } from '../../agent/config.js';

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
});
