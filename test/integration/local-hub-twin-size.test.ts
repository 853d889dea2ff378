/**
 * The local hub enforces IoT Hub's twin size limits: an update that would grow the reported
 * properties (or the desired ones) past 32 KB, counted as IoT Hub counts them, is refused and
 * changes nothing; one that shrinks them is taken. Driven by the real azure-iot-device client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twinSize } from '../../agent/local-hub/json.js';
import { LocalHub, connectModule, type ModuleClient } from '../support/local-hub.js';

const DEVICE = 'gw-size';
let hub: LocalHub;
let client: ModuleClient;

beforeAll(async () => {
  hub = await LocalHub.start();
  client = await connectModule(hub, hub.addModule(DEVICE, 'm'));
});

afterAll(async () => {
  await client?.close();
  await hub?.stop();
});

describe('twin size limits in the local hub', () => {
  it('counts keys and values as IoT Hub does: UTF-8 strings, numbers 8 bytes, booleans 4, no $ members', () => {
    expect(twinSize({ ab: 'cdé', n: 1, b: false, o: { k: 'v' }, $version: 3 })).toBe(2 + 4 + 1 + 8 + 1 + 4 + 1 + 1 + 1);
    expect(twinSize({ list: ['ab', 'c'] })).toBe(4 + 3);
  });

  it('refuses a reported update that would grow past 32 KB, and takes one that shrinks it', async () => {
    const twin = await client.getTwin();
    const update = (patch: object) => new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())));
    await update({ big: 'x'.repeat(32 * 1024 - 3) }); // exactly 32 KB
    expect(twinSize(hub.reported(DEVICE, 'm'))).toBe(32 * 1024);

    await expect(update({ more: true })).rejects.toThrow();
    expect(hub.reported(DEVICE, 'm')).not.toHaveProperty('more');

    await update({ big: null, small: 'ok' });
    expect(hub.reported(DEVICE, 'm')).toEqual({ small: 'ok' });
  });

  it('refuses a desired update over 32 KB with PW_LOCALHUB_TWIN_TOO_LARGE', () => {
    expect(() => hub.updateDesired(DEVICE, 'm', { big: 'x'.repeat(32 * 1024) })).toThrow(expect.objectContaining({ code: 'PW_LOCALHUB_TWIN_TOO_LARGE' }));
    expect(hub.desired(DEVICE, 'm')).toEqual({});
  });
});
