/** Model contracts 1 and 2: the metadata as the agent reads it from a model file. */
import { describe, expect, it } from 'vitest';
import { contractFor, MAX_FEATURES, MAX_NAME_LENGTH, MAX_WINDOW, metadataToProps, parseModelMetadata, readModelMetadata, type ModelMetadata } from '../../inference/contract.js';
import { findAlgorithm } from '../../trainer/algorithms/index.js';
import { encodeModel } from '../../trainer/onnx/model.js';
import { rng } from '../support/models.js';

const meta: ModelMetadata = {
  contract: 1,
  features: ['Pressure', 'Flow'],
  window: 10,
  threshold: 3.5,
  source: 'pump-1',
  version: 'v1',
  trainedAt: '2026-12-05T10:00:00.000Z',
  algorithm: 'mset',
  metrics: {},
};

describe('model contract 1 metadata', () => {
  it('reads back what the trainer writes', () => {
    expect(parseModelMetadata(metadataToProps(meta))).toEqual(meta);
  });

  it.each([0, 2.5, MAX_WINDOW + 1, 5_000_000])('refuses a window of %s readings, naming the allowed range (a huge one would make the agent allocate gigabytes)', (window) => {
    expect(() => parseModelMetadata(metadataToProps({ ...meta, window }))).toThrow(`model metadata "pumpwatch.window" must be an integer from 1 to ${MAX_WINDOW}, got "${window}"`);
  });

  it('reads back a stopped-when rule, its warm-up 0 when the key leaves it out', () => {
    const withRule = { ...meta, stoppedWhen: { when: [{ feature: 'Flow', below: 0.5 }], afterStartSeconds: 600 } };
    expect(parseModelMetadata(metadataToProps(withRule))).toEqual(withRule);
    const props = { ...metadataToProps(meta), 'pumpwatch.stopped_when': '{"feature":"Flow","below":-1.5}' };
    expect(parseModelMetadata(props).stoppedWhen).toEqual({ when: [{ feature: 'Flow', below: -1.5 }], afterStartSeconds: 0 });
    expect(parseModelMetadata(metadataToProps(meta))).not.toHaveProperty('stoppedWhen');
  });

  it.each([
    ['Flow<0.5', 'model metadata "pumpwatch.stopped_when" is not JSON: "Flow<0.5"'],
    ['["Flow", 0.5]', 'model metadata "pumpwatch.stopped_when" must be a JSON object {"feature", "below", "afterStartSeconds"} or {"all": [{"feature", "below"}, …], "afterStartSeconds"}'],
    ['{"feature":"Current","below":0.5}', 'model metadata "pumpwatch.stopped_when" "feature" "Current" is not one of the model\'s features ("Pressure", "Flow")'],
    ['{"below":0.5}', 'model metadata "pumpwatch.stopped_when" "feature" must be the name of one of the model\'s features'],
    ['{"feature":"Flow"}', 'model metadata "pumpwatch.stopped_when" "below" must be a finite number, got nothing'],
    ['{"feature":"Flow","below":"0.5"}', 'model metadata "pumpwatch.stopped_when" "below" must be a finite number, got "0.5"'],
    ['{"feature":"Flow","below":1e999}', 'model metadata "pumpwatch.stopped_when" "below" must be a finite number, got null'],
    ['{"feature":"Flow","below":0.5,"afterStartSeconds":2.5}', 'model metadata "pumpwatch.stopped_when" "afterStartSeconds" must be an integer from 0 to 86400, got 2.5'],
    ['{"feature":"Flow","below":0.5,"afterStartSeconds":86401}', 'model metadata "pumpwatch.stopped_when" "afterStartSeconds" must be an integer from 0 to 86400, got 86401'],
    ['{"feature":"Flow","below":0.5,"afterStartSeconds":-1}', 'model metadata "pumpwatch.stopped_when" "afterStartSeconds" must be an integer from 0 to 86400, got -1'],
    ['{"feature":"Flow","below":0.5,"afterStart":60}', 'model metadata "pumpwatch.stopped_when" has unknown key "afterStart" (known: feature, below, afterStartSeconds)'],
  ])('refuses a model whose stopped-when rule is %s, naming the problem', (rule, message) => {
    const props = { ...metadataToProps(meta), 'pumpwatch.stopped_when': rule };
    expect(() => parseModelMetadata(props)).toThrow(expect.objectContaining({ name: 'ModelContractError', message }));
  });

  it('reads back a rule of several conditions ("all"), and writes a rule of one in the one-condition form a previous agent reads', () => {
    const two = { ...meta, stoppedWhen: { when: [{ feature: 'Flow', below: 5 }, { feature: 'Pressure', below: 0.1 }], afterStartSeconds: 1800 } };
    const props = metadataToProps(two);
    expect(JSON.parse(props['pumpwatch.stopped_when']!)).toEqual({ all: [{ feature: 'Flow', below: 5 }, { feature: 'Pressure', below: 0.1 }], afterStartSeconds: 1800 });
    expect(parseModelMetadata(props)).toEqual(two);
    const one = { ...meta, stoppedWhen: { when: [{ feature: 'Flow', below: 5 }], afterStartSeconds: 60 } };
    expect(metadataToProps(one)['pumpwatch.stopped_when']).toBe('{"feature":"Flow","below":5,"afterStartSeconds":60}');
    // "all" of one condition is the same rule; without afterStartSeconds, no warm-up
    const single = { ...metadataToProps(meta), 'pumpwatch.stopped_when': '{"all":[{"feature":"Flow","below":5}]}' };
    expect(parseModelMetadata(single).stoppedWhen).toEqual({ when: [{ feature: 'Flow', below: 5 }], afterStartSeconds: 0 });
  });

  it.each([
    ['{"all":[]}', '"all" must be a non-empty JSON array of conditions {"feature", "below"}, got []'],
    ['{"all":{"feature":"Flow","below":5}}', '"all" must be a non-empty JSON array of conditions {"feature", "below"}, got {"feature":"Flow","below":5}'],
    ['{"all":[{"feature":"Flow","below":5},{"feature":"Flow","below":1}]}', '"all" names the feature "Flow" twice (one condition per feature)'],
    ['{"all":[{"feature":"Flow","below":5},{"feature":"Current","below":0.2}]}', '"all"[1]: "feature" "Current" is not one of the model\'s features ("Pressure", "Flow")'],
    ['{"all":[{"feature":"Flow","below":5}],"feature":"Pressure","below":1}', 'mixes its two forms: "all" with "feature" and "below" (give one condition as {"feature", "below"}, or every condition in "all")'],
    ['{"all":[{"feature":"Flow","below":5,"afterStartSeconds":60}]}', '"all"[0] has unknown key "afterStartSeconds" (known: feature, below)'],
    ['{"all":[{"feature":"Flow","below":1e999}]}', '"all"[0]: "below" must be a finite number, got null'],
    ['{"all":[{"feature":"Flow"}]}', '"all"[0]: "below" must be a finite number, got nothing'],
    ['{"all":["Flow<5"]}', '"all"[0] must be a JSON object {"feature", "below"}'],
    ['{"all":[{"feature":"Flow","below":5}],"afterStart":60}', 'has unknown key "afterStart" (known: all, afterStartSeconds)'],
    ['{"all":[{"feature":"Flow","below":5}],"afterStartSeconds":-5}', '"afterStartSeconds" must be an integer from 0 to 86400, got -5'],
  ])('refuses a model whose rule of several conditions is %s, naming the problem', (rule, problem) => {
    const props = { ...metadataToProps(meta), 'pumpwatch.stopped_when': rule };
    expect(() => parseModelMetadata(props)).toThrow(expect.objectContaining({ name: 'ModelContractError', message: `model metadata "pumpwatch.stopped_when" ${problem}` }));
  });

  it('takes the longest window allowed', () => {
    expect(parseModelMetadata(metadataToProps({ ...meta, window: MAX_WINDOW })).window).toBe(MAX_WINDOW);
  });

  it('refuses a model whose features no reading can carry: more than MAX_FEATURES, a name over MAX_NAME_LENGTH, __proto__', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
    expect(MAX_FEATURES).toBe(256);
    expect(MAX_NAME_LENGTH).toBe(128);
    expect(() => parseModelMetadata(metadataToProps({ ...meta, features: many(257) }))).toThrow(
      'model metadata "pumpwatch.features" names 257 features, at most 256 allowed (a reading carries at most 256 values)',
    );
    expect(() => parseModelMetadata(metadataToProps({ ...meta, features: ['Flow', 'L'.repeat(129)] }))).toThrow(
      `model metadata "pumpwatch.features": the feature name "${'L'.repeat(40)}…" is 129 characters long, at most 128 allowed (no reading can carry a value by that name)`,
    );
    expect(() => parseModelMetadata(metadataToProps({ ...meta, features: ['Flow', '__proto__'] }))).toThrow(
      'model metadata "pumpwatch.features": the feature name "__proto__" is reserved: a JavaScript object cannot hold a value by that name (no reading can carry a value by that name)',
    );
    expect(() => parseModelMetadata(metadataToProps({ ...meta, features: ['Flow', 'Pres\u202eerus'] }))).toThrow(
      'model metadata "pumpwatch.features": the feature name "Pres\\u202eerus" has an invisible or control character (U+202E at character 5): control, bidirectional, zero-width and blank characters are refused in a name, which must show as it is matched (no reading can carry a value by that name)',
    );
    // The limits themselves, and names of Object.prototype that a reading does carry as values.
    for (const features of [many(256), ['L'.repeat(128)], ['constructor', 'toString', 'prototype']]) {
      expect(parseModelMetadata(metadataToProps({ ...meta, features })).features).toEqual(features);
    }
  });

  it('refuses a real 257-feature ONNX model from elsewhere with a ModelContractError', () => {
    // Made the way the trainer makes one, without its check: the agent must not activate it (it would never score).
    const r = rng(7);
    const features = Array.from({ length: 257 }, (_, i) => `s${i}`);
    const rows = Array.from({ length: 300 }, () => Float64Array.from(features, () => r()));
    const model = findAlgorithm('pca')!.fit({ features, rows, window: 1 });
    const bytes = encodeModel(model.toOnnxGraph(), {
      metadata: metadataToProps({ ...meta, features: [...model.features], window: model.window, threshold: model.threshold, algorithm: model.algorithm }),
      producerVersion: 'elsewhere',
    });
    expect(() => readModelMetadata(bytes)).toThrow(expect.objectContaining({ name: 'ModelContractError', code: 'PW_MODEL_CONTRACT', problem: 'contract', message: expect.stringContaining('names 257 features, at most 256 allowed') }));
  });

  it('reads back frozen-sensor bounds (pumpwatch.stuck_after); a model without the key has none', () => {
    const withBounds = { ...meta, stuckAfter: { Pressure: 60, Flow: 129 } };
    const props = metadataToProps(withBounds);
    expect(props['pumpwatch.stuck_after']).toBe('{"Pressure":60,"Flow":129}');
    expect(parseModelMetadata(props)).toEqual(withBounds);
    expect(parseModelMetadata(metadataToProps(meta))).not.toHaveProperty('stuckAfter');
    // an object naming no feature: none of them was a noisy analog signal
    expect(parseModelMetadata({ ...metadataToProps(meta), 'pumpwatch.stuck_after': '{}' }).stuckAfter).toEqual({});
  });

  it.each([
    ['Pressure:60', 'is not JSON: "Pressure:60"'],
    ['[60, 60]', 'must be a JSON object of feature names and numbers of readings, e.g. {"Current": 60}'],
    ['60', 'must be a JSON object of feature names and numbers of readings, e.g. {"Current": 60}'],
    ['{"Current":60}', 'names "Current", which is not one of the model\'s features ("Pressure", "Flow")'],
    ['{"Flow":"60"}', 'gives "Flow" "60": readings in a row must be an integer from 60 to 86400'],
    ['{"Flow":59}', 'gives "Flow" 59: readings in a row must be an integer from 60 to 86400'],
    ['{"Flow":90.5}', 'gives "Flow" 90.5: readings in a row must be an integer from 60 to 86400'],
    ['{"Flow":86401}', 'gives "Flow" 86401: readings in a row must be an integer from 60 to 86400'],
    ['{"Flow":null}', 'gives "Flow" null: readings in a row must be an integer from 60 to 86400'],
  ])('refuses a model whose pumpwatch.stuck_after is %s, naming the problem', (value, problem) => {
    const props = { ...metadataToProps(meta), 'pumpwatch.stuck_after': value };
    expect(() => parseModelMetadata(props)).toThrow(expect.objectContaining({ name: 'ModelContractError', message: `model metadata "pumpwatch.stuck_after" ${problem}` }));
  });
});

describe('model contract 2: contract 1 and the rules an agent must apply (pumpwatch.requires)', () => {
  const rule = { when: [{ feature: 'Flow', below: 0.5 }], afterStartSeconds: 600 };
  const both = { ...meta, contract: 2 as const, stoppedWhen: rule, stuckAfter: { Pressure: 60 } };
  const refusal = (props: Record<string, string>) => {
    try {
      parseModelMetadata(props);
    } catch (err) {
      return err;
    }
    return 'not refused';
  };

  it('is the lowest contract a model needs: 1 without rules, 2 with either', () => {
    expect(contractFor(meta)).toBe(1);
    expect(contractFor({ stoppedWhen: rule })).toBe(2);
    expect(contractFor({ stuckAfter: { Pressure: 60 } })).toBe(2);
  });

  it('writes and reads back the rules a model requires, in a fixed order', () => {
    const props = metadataToProps(both);
    expect(props['pumpwatch.contract']).toBe('2');
    expect(props['pumpwatch.requires']).toBe('stopped-when,stuck-after');
    expect(parseModelMetadata(props)).toEqual(both);
    expect(metadataToProps({ ...meta, contract: 2, stuckAfter: { Flow: 90 } })['pumpwatch.requires']).toBe('stuck-after');
    // a contract-1 model has no requires, with or without a rule (as the trainer wrote them before contract 2)
    expect(metadataToProps({ ...both, contract: 1 })).not.toHaveProperty(['pumpwatch.requires']);
    expect(parseModelMetadata(metadataToProps({ ...both, contract: 1 }))).toEqual({ ...both, contract: 1 });
  });

  it.each([
    ['stopped-when,stuck-after,low-suction', 'names a rule this agent does not know: "low-suction" (it applies stopped-when, stuck-after); the model needs a newer agent'],
    ['low-suction, cavitation-index', 'names rules this agent does not know: "low-suction", "cavitation-index" (it applies stopped-when, stuck-after); the model needs a newer agent'],
    ['stopped-when,,stuck-after', 'names an empty rule: "stopped-when,,stuck-after" (comma-separated rule names, e.g. "stopped-when,stuck-after")'],
    ['stopped-when,stuck-after,stopped-when', 'names "stopped-when" twice'],
  ])('refuses a contract-2 model whose requires is %s, naming the rule', (requires, problem) => {
    const props = { ...metadataToProps(both), 'pumpwatch.requires': requires };
    expect(refusal(props)).toMatchObject({ name: 'ModelContractError', code: 'PW_MODEL_CONTRACT', problem: 'contract', message: `model metadata "pumpwatch.requires" ${problem}` });
  });

  it('refuses a contract-2 model whose requires and rule keys disagree', () => {
    const props = metadataToProps(both);
    expect(refusal({ ...props, 'pumpwatch.requires': 'stopped-when' })).toMatchObject({
      message: 'model metadata has "pumpwatch.stuck_after" but "pumpwatch.requires" ("stopped-when") does not name "stuck-after": an agent that does not know the rule would score without it',
    });
    const { 'pumpwatch.stopped_when': _rule, ...withoutRule } = props;
    expect(refusal(withoutRule)).toMatchObject({ message: 'model metadata "pumpwatch.requires" names "stopped-when" but the model lacks "pumpwatch.stopped_when"' });
    const { 'pumpwatch.requires': _requires, ...withoutRequires } = props;
    expect(refusal(withoutRequires)).toMatchObject({ message: 'model metadata lacks "pumpwatch.requires"' });
    // a contract-2 model without rules requires none
    expect(parseModelMetadata({ ...metadataToProps(meta), 'pumpwatch.contract': '2', 'pumpwatch.requires': '' })).toEqual({ ...meta, contract: 2 });
  });

  it.each(['3', '0', '2.0', ''])('refuses a model of contract "%s", naming it', (contract) => {
    const props = { ...metadataToProps(both), 'pumpwatch.contract': contract };
    expect(refusal(props)).toMatchObject({
      name: 'ModelContractError',
      message: `model metadata "pumpwatch.contract" is "${contract}", this agent reads contracts 1 and 2 (a model of a later contract needs a newer agent)`,
    });
  });
});
