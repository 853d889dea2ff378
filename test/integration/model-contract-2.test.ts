/**
 * Model contracts 1 and 2 on models the trainer fitted, through the agent's own loader (LoadedModel:
 * metadata check and a real onnxruntime session) and engine. A model with a rule that changes what
 * its scores mean is contract 2, which agents before it refuse (they accept "1" only, and would
 * score a stopped pump: an anomaly at every stop); a model without rules stays contract 1.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { PredictionRow, Reading } from '../../buffer/types.js';
import { metadataToProps, readMetadataProps } from '../../inference/contract.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { ModelStatusBoard } from '../../inference/model-status.js';
import { fitTable } from '../../trainer/fit.js';
import { rewritten, trainingTable } from '../support/models.js';
import { readingsWithStops, STOP_RULE, stopModels } from '../support/stops.js';

const loaded: LoadedModel[] = [];
async function load(bytes: Uint8Array, origin: string): Promise<LoadedModel> {
  const model = await LoadedModel.fromBytes(bytes, origin);
  loaded.push(model);
  return model;
}

afterAll(async () => {
  for (const m of loaded) await m.release();
});

/** Running 0-199, stopped 200-259, running 260-399 (1 Hz). */
const readings = readingsWithStops(400, (i) => i >= 200 && i < 260);

async function scoreAll(model: LoadedModel, rs: readonly Reading[]): Promise<PredictionRow[]> {
  const engine = new InferenceEngine();
  engine.setModel('default', model);
  const rows: PredictionRow[] = [];
  for (let i = 0; i < rs.length; i += 50) rows.push(...(await engine.score(rs.slice(i, i + 50), 0)));
  return rows;
}

/** The model's entry as /status shows it. */
function statusOf(model: LoadedModel) {
  const board = new ModelStatusBoard();
  board.set('default', false, model, 'active', null, undefined, model.meta.version);
  return board.get('default');
}

const verdicts = (rows: readonly PredictionRow[]) => rows.map((r) => [r.score, r.anomaly, r.unscoredReason]);

describe('model contract 2', () => {
  it('writes a model with a stopped-when rule as contract 2 requiring it (agents before contract 2 take only "1": they refuse it), and scores it with the rule applied', async () => {
    const { fit } = stopModels({ version: 'c2-stop', stuckAfter: {} });
    const props = readMetadataProps(fit.bytes);
    expect(props['pumpwatch.contract']).toBe('2');
    expect(props['pumpwatch.requires']).toBe('stopped-when');
    expect(props).not.toHaveProperty(['pumpwatch.stuck_after']);
    const model = await load(fit.bytes, 'c2-stop');
    expect(model.meta).toMatchObject({ contract: 2, stoppedWhen: STOP_RULE });
    expect(statusOf(model)).toMatchObject({ contract: 2, requires: ['stopped-when'] });
    const rows = await scoreAll(model, readings);
    expect(rows.slice(200, 260).every((r) => r.score === null && /^pump stopped: /.test(r.unscoredReason ?? ''))).toBe(true);
    expect(rows.filter((r) => r.anomaly === true)).toEqual([]);
    expect(rows.slice(300).every((r) => typeof r.score === 'number')).toBe(true);
  });

  it('names both rules when the model has frozen-sensor bounds too', async () => {
    const { fit } = stopModels({ version: 'c2-both', stuckAfter: { Current: 60, Flow: 90 } });
    expect(readMetadataProps(fit.bytes)).toMatchObject({ 'pumpwatch.contract': '2', 'pumpwatch.requires': 'stopped-when,stuck-after' });
    expect((await load(fit.bytes, 'c2-both')).meta).toMatchObject({ contract: 2, stoppedWhen: STOP_RULE, stuckAfter: { Current: 60, Flow: 90 } });
  });

  it('writes a model without rules as contract 1, which every agent reads, and scores it', async () => {
    const fit = fitTable(trainingTable(600, 7), { version: 'c1', window: 1, algorithm: 'pca', stuckAfter: {} });
    const props = readMetadataProps(fit.bytes);
    expect(props['pumpwatch.contract']).toBe('1');
    expect(props).not.toHaveProperty(['pumpwatch.requires']);
    const model = await load(fit.bytes, 'c1');
    expect(model.meta.contract).toBe(1);
    expect(statusOf(model)).toMatchObject({ contract: 1, requires: null });
    expect((await scoreAll(model, readings.slice(0, 50))).every((r) => typeof r.score === 'number')).toBe(true);
  });

  it('still reads a contract-1 model carrying the rules, as the trainer wrote them before contract 2, giving the same verdicts', async () => {
    const { fit } = stopModels({ version: 'c1-stop' });
    const asBefore = rewritten(fit, metadataToProps({ ...fit.metadata, contract: 1 }));
    const props = readMetadataProps(asBefore);
    expect(props['pumpwatch.contract']).toBe('1');
    expect(props).not.toHaveProperty(['pumpwatch.requires']);
    const old = await load(asBefore, 'c1-stop');
    expect(old.meta).toMatchObject({ contract: 1, stoppedWhen: STOP_RULE, stuckAfter: fit.metadata.stuckAfter });
    const current = await load(fit.bytes, 'c1-stop');
    expect(current.meta.contract).toBe(2);
    const rows = await scoreAll(old, readings);
    expect(verdicts(rows)).toEqual(verdicts(await scoreAll(current, readings)));
    expect(rows.slice(200, 260).every((r) => r.score === null && /^pump stopped: /.test(r.unscoredReason ?? ''))).toBe(true);
  });

  it('refuses a contract-2 model requiring a rule this agent does not know, naming it', async () => {
    const { fit } = stopModels({ version: 'c2-later' });
    const later = rewritten(fit, { ...metadataToProps(fit.metadata), 'pumpwatch.requires': 'stopped-when,stuck-after,low-suction', 'pumpwatch.low_suction': '{"feature":"Pressure","below":0.1}' });
    await expect(LoadedModel.fromBytes(later, 'c2-later')).rejects.toMatchObject({
      name: 'ModelContractError',
      code: 'PW_MODEL_CONTRACT',
      message: 'model metadata "pumpwatch.requires" names a rule this agent does not know: "low-suction" (it applies stopped-when, stuck-after); the model needs a newer agent',
    });
  });
});
