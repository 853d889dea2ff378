/**
 * The local hub's HTTPS side driven by the real azure-iothub Registry: module twin read and
 * update with etags, twin queries, service SAS checks, and a desired change reaching a module.
 */
import iothub from 'azure-iothub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalHub, connectModule, type ModuleClient } from '../support/local-hub.js';

const { Registry } = iothub;
type RegistryClient = InstanceType<typeof Registry>;

async function queryAll(registry: RegistryClient, sql: string, pageSize?: number): Promise<{ ids: string[]; pages: number }> {
  const query = registry.createQuery(sql, pageSize);
  const ids: string[] = [];
  let pages = 0;
  while (query.hasMoreResults) {
    const { result } = await query.nextAsTwin();
    pages += 1;
    for (const twin of result) ids.push(`${twin.deviceId}/${twin.moduleId}`);
  }
  return { ids, pages };
}

describe('LocalHub with the real azure-iothub Registry', () => {
  let hub: LocalHub;
  let registry: RegistryClient;
  const clients: ModuleClient[] = [];

  beforeAll(async () => {
    hub = await LocalHub.start();
    registry = hub.attachRegistry(Registry.fromConnectionString(hub.serviceConnectionString()));
    for (const device of ['gw-1', 'gw-2', 'gw-3']) hub.addModule(device, 'pumpwatch');
    hub.addModule('gw-1', 'sensor');
    hub.updateReported('gw-1', 'pumpwatch', { models: { 'pump-17': { version: '2', status: 'active' } }, pumps: ['pump-17', 'pump-3'] });
    hub.updateReported('gw-2', 'pumpwatch', { models: { default: { version: '1', status: 'active' } }, pumps: ['pump-9'] });
    hub.updateReported('gw-1', 'sensor', { models: { 'pump-17': { version: '9' } } });
  });

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await hub?.stop();
  });

  it('reads a module twin and updates desired properties and tags under its etag', async () => {
    const { responseBody: before } = await registry.getModuleTwin('gw-3', 'pumpwatch');
    expect(before.moduleId).toBe('pumpwatch');

    const patch = { tags: { site: 'north' }, properties: { desired: { models: { default: { version: '5', url: 'https://blob/x', sha256: 'ab', size: 10 } } } } };
    const { responseBody: after } = await registry.updateModuleTwin('gw-3', 'pumpwatch', patch, before.etag);

    expect(after.etag).not.toBe(before.etag);
    expect(after.tags).toEqual({ site: 'north' });
    expect(hub.desired('gw-3', 'pumpwatch')).toEqual(patch.properties.desired);
    expect(hub.getTwin('gw-3', 'pumpwatch').properties.desired['$version']).toBe(2);
  });

  it('refuses an update under a stale etag and accepts one under *', async () => {
    const { responseBody: twin } = await registry.getModuleTwin('gw-2', 'pumpwatch');
    await registry.updateModuleTwin('gw-2', 'pumpwatch', { tags: { round: 1 } }, twin.etag);

    await expect(registry.updateModuleTwin('gw-2', 'pumpwatch', { tags: { round: 2 } }, twin.etag)).rejects.toMatchObject({ name: 'InvalidEtagError' });
    await registry.updateModuleTwin('gw-2', 'pumpwatch', { tags: { round: 3 } }, '*');
    expect(hub.getTwin('gw-2', 'pumpwatch').tags).toEqual({ round: 3 });
  });

  it('pushes a desired change made through the Registry to the connected module', async () => {
    const client = await connectModule(hub, hub.addModule('gw-4', 'pumpwatch'));
    clients.push(client);
    const twin = await client.getTwin();
    const subscribed = new Promise<void>((resolve) => {
      hub.on('subscribed', (s) => {
        if (s.deviceId === 'gw-4' && s.topic.startsWith('$iothub/twin/PATCH/properties/desired')) resolve();
      });
    });
    const received = new Promise<Record<string, unknown>>((resolve) => {
      twin.on('properties.desired', (patch: Record<string, unknown>) => {
        if (patch['models']) resolve(patch);
      });
    });
    await subscribed;

    const models = { 'pump-17': { version: '6', url: 'https://blob/y', sha256: 'cd', size: 20 } };
    await registry.updateModuleTwin('gw-4', 'pumpwatch', { properties: { desired: { models } } }, '*');

    expect(await received).toEqual({ models, $version: 2 });
  });

  it('answers the twin queries a deploy step needs', async () => {
    const byModule = await queryAll(registry, "SELECT * FROM devices.modules WHERE moduleId = 'pumpwatch'");
    expect(byModule.ids.sort()).toEqual(['gw-1/pumpwatch', 'gw-2/pumpwatch', 'gw-3/pumpwatch', 'gw-4/pumpwatch']);

    const byModel = await queryAll(registry, "select * from devices.modules where moduleId = 'pumpwatch' and is_defined(properties.reported.models.[[pump-17]])");
    expect(byModel.ids).toEqual(['gw-1/pumpwatch']);

    const byPump = await queryAll(registry, "SELECT * FROM devices.modules WHERE ARRAY_CONTAINS(properties.reported.pumps, 'pump-9') OR deviceId = 'gw-3'");
    expect(byPump.ids.sort()).toEqual(['gw-2/pumpwatch', 'gw-3/pumpwatch']);

    const negated = await queryAll(registry, "SELECT * FROM devices.modules WHERE NOT (moduleId = 'pumpwatch') AND properties.reported.models.[[pump-17]].version = '9'");
    expect(negated.ids).toEqual(['gw-1/sensor']);
  });

  it('pages query results with continuation tokens', async () => {
    const { ids, pages } = await queryAll(registry, 'SELECT * FROM devices.modules', 2);
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
    expect(pages).toBe(3);
  });

  it('refuses a query outside the supported subset with a message that names the problem', async () => {
    await expect(registry.createQuery('SELECT deviceId FROM devices.modules').next()).rejects.toMatchObject({
      name: 'ArgumentError',
      message: expect.stringContaining('expected "*"'),
    });
    await expect(registry.createQuery('SELECT * FROM devices').next()).rejects.toMatchObject({
      message: expect.stringContaining('only FROM devices.modules'),
    });
  });

  it('answers 404 for an unknown module and 401 for a token signed with another key', async () => {
    await expect(registry.getModuleTwin('gw-9', 'pumpwatch')).rejects.toThrow('Not found');
    const forged = hub.serviceConnectionString().replace(/SharedAccessKey=[^;]+$/, `SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')}`);
    const intruder = hub.attachRegistry(Registry.fromConnectionString(forged));

    await expect(intruder.getModuleTwin('gw-1', 'pumpwatch')).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });
});
