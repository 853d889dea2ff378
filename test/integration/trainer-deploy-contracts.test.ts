/**
 * deploy sends no gateway a model its agent cannot read (decision 25): the agent reports the model
 * contracts and rules it reads in its twin's `state`, and deploy, rollback and shadow deploys check
 * the model's contract and `pumpwatch.requires` against them, against the real services: the
 * registry in Azurite, the twins in the local hub through the real azure-iothub Registry, and a
 * real agent connected with the real azure-iot-device client.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readMetadataProps } from '../../inference/contract.js';
import type { CommandContext, TwinRegistry } from '../../trainer/cloud/context.js';
import { readModelBytes } from '../../trainer/registry/model-blob.js';
import { readBest } from '../../trainer/registry/read.js';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { addAgentModule, LocalHub } from '../support/local-hub.js';
import { promoteFittedModel } from '../support/registry.js';
import { hubRegistry, runTrainer, trainerContext } from '../support/trainer.js';

let az: TestAzurite;
let container: ContainerClient;
let hub: LocalHub;
let registry: TwinRegistry;
let agent: TestAgent | undefined;
/** Azurite checks SAS expiry against the wall clock, so the trainer's clock is the real one. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const PUMP = 'pump-c';
/** An agent of 2026-12-07 or later that was built to read contract 1 only (as it would report it). */
const C1_VERSION = '0.1.0+aaaaaaaaaaaa';

const context = (): CommandContext => trainerContext(container, { now: NOW, registry });
const cli = (args: string[]) => runTrainer(args, context());
const desiredModels = (device: string) => (hub.desired(device, 'pumpwatch') as { models?: Record<string, any> }).models ?? {};
const until = (fn: () => unknown) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });

/** Promotes a model the trainer fits as `version` of `source`; returns the contract and `requires` its model.onnx carries. */
async function promote(source: string, version: string, seed: number, contract: 1 | 2): Promise<[string | undefined, string | undefined]> {
  // The rows give frozen-sensor bounds (stuck-after), so a fit is contract 2 unless told to write none.
  const record = await promoteFittedModel(container, source, version, seed, NOW, undefined, contract === 1 ? { stuckAfter: {} } : {});
  const props = readMetadataProps(await readModelBytes(container, record));
  return [props['pumpwatch.contract'], props['pumpwatch.requires']];
}

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('deploy-contracts-it');
  await container.create();
  hub = await LocalHub.start();
  registry = hubRegistry(hub);
  // gw-new: an agent of this build; gw-c1: one reporting contract 1 only; gw-old: one from before the report.
  addAgentModule(hub, 'gw-new', 'pumpwatch');
  hub.addModule('gw-c1', 'pumpwatch');
  hub.updateReported('gw-c1', 'pumpwatch', { state: { agentVersion: C1_VERSION, modelContracts: [1], modelRules: [] } });
  hub.addModule('gw-old', 'pumpwatch');
  hub.updateReported('gw-old', 'pumpwatch', { state: { agentVersion: '0.1.0+bbbbbbbbbbbb' } });
  for (const device of ['gw-new', 'gw-c1', 'gw-old']) hub.updateReported(device, 'pumpwatch', { pumps: [PUMP] });
});

afterAll(async () => {
  await agent?.stop();
  await hub?.stop();
  await az?.dispose();
});

describe('deploy checks what each gateway agent reads', () => {
  it('refuses a contract-2 model to the agents reporting contract 1 or nothing, naming what they read, deploys it to the others, and a contract-1 model to the one reporting nothing', async () => {
    expect(await promote(PUMP, 'v2', 1, 2)).toEqual(['2', 'stuck-after']);
    const res = await cli(['deploy', '--source', PUMP]);
    expect(res.code, res.err).toBe(1);
    const lines = res.out.split('\n');
    expect(lines[0]).toBe(`deploy models/${PUMP}/v2/model.onnx → 3 module(s)`);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}ok {5}gw-new\/pumpwatch: desired models\.pump-c = v2/));
    expect(lines).toContain(
      `  FAILED gw-c1/pumpwatch: PW_TRAINER_AGENT_TOO_OLD: gw-c1/pumpwatch (agent ${C1_VERSION}) reads contract 1 with no rules; the model needs contract 2 requiring stuck-after: ` +
        'not updated, the agent would report the model rejected and keep its current one; upgrade the agent, or deploy a model it reads (--force-old-agents writes it anyway)',
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^ {2}FAILED gw-old\/pumpwatch: PW_TRAINER_AGENT_TOO_OLD: gw-old\/pumpwatch \(agent 0\.1\.0\+bbbbbbbbbbbb\) reports no model contracts \(an agent before that report of the evening of 2026-12-07\): taken to read contract 1 only; the model needs contract 2 requiring stuck-after: not updated/,
      ),
    );
    expect(desiredModels('gw-new')[PUMP]).toMatchObject({ version: 'v2' });
    expect(desiredModels('gw-c1')).toEqual({});
    expect(desiredModels('gw-old')).toEqual({});
    // A single module named with --device, and a shadow deploy, are checked the same way.
    for (const extra of [[], ['--shadow']]) {
      const one = await cli(['deploy', '--source', PUMP, '--device', 'gw-c1', ...extra]);
      expect(one.code, extra.join(' ')).toBe(1);
      expect(one.out).toMatch(/\n {2}FAILED gw-c1\/pumpwatch: PW_TRAINER_AGENT_TOO_OLD: gw-c1\/pumpwatch \(agent 0\.1\.0\+a{12}\) reads contract 1 with no rules/);
      expect(desiredModels('gw-c1')).toEqual({});
    }
    // What an agent that reports nothing reads, contract 1, it is sent.
    expect(await promote(PUMP, 'v1', 2, 1)).toEqual(['1', undefined]);
    const c1 = await cli(['deploy', '--source', PUMP, '--device', 'gw-old']);
    expect(c1.code, c1.out + c1.err).toBe(0);
    expect(c1.err).toBe('');
    expect(desiredModels('gw-old')[PUMP]).toMatchObject({ version: 'v1' });
  });

  it('rolls back to a contract-2 model but does not send it to an agent that reads contract 1 only', async () => {
    // best: v1 (contract 1), promoted after v2 (contract 2): the rollback makes v2 best again.
    const res = await cli(['rollback', '--source', PUMP, '--device', 'gw-old']);
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/best\.json v1 → v2 \(rollback\)/);
    expect(res.out).toMatch(/\n {2}FAILED gw-old\/pumpwatch: PW_TRAINER_AGENT_TOO_OLD: gw-old\/pumpwatch .*reports no model contracts/);
    // Not every module has it: the deploy stays pending, and the command that pushes it is printed.
    expect((await readBest(container, PUMP))!.pointer).toMatchObject({ version: 'v2', deployPending: true });
    expect(res.err).toMatch(/pumpwatch-trainer deploy --source pump-c --version v2 --device gw-old$/);
    expect(desiredModels('gw-old')[PUMP]).toMatchObject({ version: 'v1' });
  });

  it('writes the model anyway with --force-old-agents, with a warning line for each such agent', async () => {
    const res = await cli(['deploy', '--source', PUMP, '--force-old-agents']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).not.toMatch(/FAILED/);
    const warnings = res.err.split('\n').filter((l) => l.startsWith('warning: '));
    expect(warnings).toHaveLength(2);
    expect(warnings).toContainEqual(expect.stringMatching(/^warning: PW_TRAINER_AGENT_TOO_OLD: gw-c1\/pumpwatch \(agent 0\.1\.0\+a{12}\) reads contract 1 with no rules; .*written anyway \(--force-old-agents\)/));
    expect(warnings).toContainEqual(expect.stringMatching(/^warning: PW_TRAINER_AGENT_TOO_OLD: gw-old\/pumpwatch .*reports no model contracts \(an agent before that report of the evening of 2026-12-07/));
    for (const device of ['gw-new', 'gw-c1', 'gw-old']) expect(desiredModels(device)[PUMP]).toMatchObject({ version: 'v2' });
    // Every module has it: the rollback's pending deploy is done.
    expect((await readBest(container, PUMP))!.pointer).not.toHaveProperty('deployPending');
  });

  it('a real agent reports the contracts and rules it reads, and deploy sends it a contract-2 model', async () => {
    const connectionString = hub.addModule('gw-agent', 'pumpwatch');
    agent = await startHubAgent(hub, connectionString, 'gw-agent');
    const state = () => (hub.reported('gw-agent', 'pumpwatch') as { state?: Record<string, unknown> }).state;
    await until(() => expect(state()).toHaveProperty('modelContracts'));
    expect(state()).toMatchObject({ modelContracts: [1, 2], modelRules: ['stopped-when', 'stuck-after'] });
    const res = await cli(['deploy', '--source', PUMP, '--device', 'gw-agent']);
    expect(res.code, res.out + res.err).toBe(0);
    expect(res.err).toBe('');
    expect(desiredModels('gw-agent')[PUMP]).toMatchObject({ version: 'v2' });
  });
});
