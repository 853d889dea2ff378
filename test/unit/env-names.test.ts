import { describe, expect, it } from 'vitest';
import { loadConfig, unknownVariableWarning } from '../../agent/config.js';
import { nearestName, unknownVariables } from '../../sync/env-names.js';

const KNOWN = ['PUMPWATCH_BLOB_CONNECTION_STRING', 'PUMPWATCH_BLOB_SAS_URL', 'PUMPWATCH_BLOB_CONTAINER', 'PUMPWATCH_LOG_LEVEL', 'PUMPWATCH_HUB', 'PUMPWATCH_SYNC'];

describe('PUMPWATCH_* variables no setting reads', () => {
  it('finds the name a misspelling was meant to be: a missing or extra underscore, another case, a typo, two letters swapped', () => {
    expect(nearestName('PUMPWATCH_BLOB_CONNECTIONSTRING', KNOWN)).toBe('PUMPWATCH_BLOB_CONNECTION_STRING');
    expect(nearestName('PUMPWATCH_LOGLEVEL', KNOWN)).toBe('PUMPWATCH_LOG_LEVEL');
    expect(nearestName('pumpwatch_log_level', KNOWN)).toBe('PUMPWATCH_LOG_LEVEL');
    expect(nearestName('PUMPWATCH_BLOB_CONTAINR', KNOWN)).toBe('PUMPWATCH_BLOB_CONTAINER');
    expect(nearestName('PUMPWATCH_BLOB_SAS_ULR', KNOWN)).toBe('PUMPWATCH_BLOB_SAS_URL');
    expect(nearestName('PUMPWATCH_BLOB_CONECTION_STRNG', KNOWN)).toBe('PUMPWATCH_BLOB_CONNECTION_STRING');
    expect(nearestName('PUMPWATCH_HUBB', KNOWN)).toBe('PUMPWATCH_HUB');
  });

  it('suggests nothing for a name that is not near any: a guess would mislead', () => {
    expect(nearestName('PUMPWATCH_IOTHUB_CONNECTION_STRING', KNOWN)).toBeNull();
    expect(nearestName('PUMPWATCH_FOO', KNOWN)).toBeNull();
    expect(nearestName('PUMPWATCH_TEST_SKIP_BUILD', KNOWN)).toBeNull();
  });

  it('lists only PUMPWATCH_* names that no setting reads, in name order', () => {
    const env = { PUMPWATCH_LOG_LEVEL: 'info', PUMPWATCH_LOGLEVEL: 'debug', PATH: '/bin', OTHER_BLOB: 'x', PUMPWATCH_ZZZ: '1', pumpwatch_hub: 'off' };
    expect(unknownVariables(env, KNOWN)).toEqual([
      { name: 'PUMPWATCH_LOGLEVEL', nearest: 'PUMPWATCH_LOG_LEVEL' },
      { name: 'PUMPWATCH_ZZZ', nearest: null },
      { name: 'pumpwatch_hub', nearest: 'PUMPWATCH_HUB' },
    ]);
  });

  it('gives the agent each unknown one with the key it is nearest to, warned about by name only, and starts (no exit 2)', () => {
    const secret = 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWtleQ==;EndpointSuffix=core.windows.net';
    const config = loadConfig({ PUMPWATCH_BLOB_CONNECTIONSTRING: secret, PUMPWATCH_LOGLEVEL: 'debug', PUMPWATCH_DATA_DIR: '/data' });
    expect(config.unknownVariables).toEqual([
      { name: 'PUMPWATCH_BLOB_CONNECTIONSTRING', nearest: 'PUMPWATCH_BLOB_CONNECTION_STRING' },
      { name: 'PUMPWATCH_LOGLEVEL', nearest: 'PUMPWATCH_LOG_LEVEL' },
    ]);
    expect(config.logLevel).toBe('info'); // the misspelt one is not read
    const warnings = config.unknownVariables.map(unknownVariableWarning);
    expect(warnings[0]).toBe(
      'PUMPWATCH_BLOB_CONNECTIONSTRING is not a setting of this agent and is ignored (a misspelling, or a setting of a newer version): did you mean PUMPWATCH_BLOB_CONNECTION_STRING?',
    );
    expect(warnings.join(' ')).not.toContain('c2VjcmV0');
    expect(unknownVariableWarning({ name: 'PUMPWATCH_NEW_THING', nearest: null })).toMatch(/: no setting has a similar name \(pumpwatch-agent --help lists them\)$/);
  });
});
