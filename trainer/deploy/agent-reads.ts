/**
 * Whether a gateway's agent reads a model, before `deploy` sends it there (decision 25). An agent
 * given a model of a contract or rule it does not read reports it `rejected` and keeps its old one:
 * nothing breaks, but the new model silently does not run there, and the operator learns it only
 * from the twin afterwards. The agent reports what it reads in its twin's `state`
 * (inference/contract.ts modelReads); an agent that reports nothing is from before that report,
 * and reads contract 1 only (contract 2 came with it).
 */
import { META_KEYS, readMetadataProps, requiredNames, type ModelReads } from '../../inference/contract.js';
import type { TwinDocument } from '../cloud/context.js';
import { TrainerError } from '../errors.js';
import type { ModuleRef } from './twin.js';

/** The first agents that report what they read; every earlier one reads contract 1 only. */
const FIRST_REPORTING_AGENT = 'the evening of 2026-12-07';

/** What a model asks of the agent that runs it: its contract, and (contract 2) the rules it names. */
export interface ModelNeeds {
  contract: number;
  rules: string[];
}

/** What a model blob (`blob`: its name, for messages) needs, from its ONNX metadata. */
export function modelNeeds(bytes: Uint8Array, blob: string): ModelNeeds {
  let props: Record<string, string>;
  try {
    props = readMetadataProps(bytes);
  } catch (err) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${blob} is not a model any agent reads: ${(err as Error).message}`, { cause: err });
  }
  const text = props[META_KEYS.contract];
  const contract = Number(text);
  if (text === undefined || !Number.isSafeInteger(contract) || contract < 1) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${blob} has no model contract: its metadata "${META_KEYS.contract}" is ${text === undefined ? 'absent' : `"${text}"`}`);
  }
  // Contract 1 has no `requires`: the rules a contract-1 model carries are ignored by older agents, never refused.
  const requires = contract === 1 ? '' : (props[META_KEYS.requires] ?? '');
  return { contract, rules: requiredNames(requires).filter((r) => r !== '') };
}

const numbers = (v: unknown): number[] | null => (Array.isArray(v) && v.every((n) => typeof n === 'number') ? (v as number[]) : null);
const strings = (v: unknown): string[] | null => (Array.isArray(v) && v.every((n) => typeof n === 'string') ? (v as string[]) : null);

/** `contracts 1, 2 and the rules stopped-when, stuck-after`; `contract 1 with no rules`. */
function describe(contracts: readonly number[], rules: readonly string[]): string {
  const c = contracts.length === 1 ? `contract ${contracts[0]}` : `contracts ${contracts.join(', ')}`;
  return `${c} ${rules.length === 0 ? 'with no rules' : `and the rules ${rules.join(', ')}`}`;
}

/**
 * null when the agent of `twin` reads a model that needs `needs`; else why not, naming the
 * target, the agent version it reports, what the model needs and what the agent reads.
 */
export function unreadableBy(twin: TwinDocument, target: ModuleRef, needs: ModelNeeds): string | null {
  const state = twin.properties?.reported?.['state'] as Partial<Record<keyof ModelReads | 'agentVersion', unknown>> | undefined;
  const contracts = numbers(state?.modelContracts);
  const rules = strings(state?.modelRules) ?? [];
  const reads = contracts ?? [1];
  if (reads.includes(needs.contract) && needs.rules.every((r) => rules.includes(r))) return null;
  const version = typeof state?.agentVersion === 'string' ? `agent ${state.agentVersion}` : 'no agent version reported';
  const agent =
    contracts !== null
      ? `reads ${describe(contracts, rules)}`
      : state?.modelContracts === undefined
        ? `reports no model contracts (an agent before that report of ${FIRST_REPORTING_AGENT}): taken to read contract 1 only`
        : `reports model contracts that are not a list of numbers (${JSON.stringify(state.modelContracts).slice(0, 80)}): taken to read contract 1 only`;
  const model = needs.contract === 1 ? 'contract 1' : `contract ${needs.contract}${needs.rules.length === 0 ? '' : ` requiring ${needs.rules.join(', ')}`}`;
  return `${target.deviceId}/${target.moduleId} (${version}) ${agent}; the model needs ${model}`;
}
