import './ort-telemetry.js'; // before onnxruntime-node: see there
import * as ort from 'onnxruntime-node';
import {
  CONTRIBUTIONS_OUTPUT_NAME,
  INPUT_NAME,
  ModelContractError,
  OUTPUT_NAME,
  readModelMetadata,
  type ModelMetadata,
} from './contract.js';

export interface ModelOutput {
  scores: Float32Array;
  /** [batch, n_features] row-major, when the model outputs `contributions`. */
  contributions: Float32Array | null;
}

/** Session options for the edge: CPU only, one thread per operator so scoring never starves sync or HTTP. */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
};

/** Windows per session.run at most (see LoadedModel.run). */
export const RUN_WINDOWS = 1024;

function tensorMeta(list: readonly ort.InferenceSession.ValueMetadata[], name: string): ort.InferenceSession.TensorValueMetadata | undefined {
  const m = list.find((v) => v.name === name);
  return m && m.isTensor ? m : undefined;
}

/** A fixed dimension that disagrees with what the contract needs, e.g. "dimension 2 is 5, the metadata says 8". */
function checkDim(shape: ReadonlyArray<number | string>, index: number, expected: number, what: string): void {
  const dim = shape[index];
  if (typeof dim === 'number' && dim > 0 && dim !== expected) {
    throw new ModelContractError(`${what} dimension ${index} is ${dim}, the metadata says ${expected}`);
  }
}

/**
 * A contract-1 or -2 model loaded into an onnxruntime-node session, checked before it is used:
 * metadata present and valid, input `features` float32 [batch, window, n_features], output `score`.
 */
export class LoadedModel {
  private constructor(
    readonly meta: ModelMetadata,
    private readonly session: ort.InferenceSession,
    readonly hasContributions: boolean,
    /** Where it came from (file path or URL), for messages. */
    readonly origin: string,
  ) {}

  static async fromBytes(bytes: Uint8Array, origin: string): Promise<LoadedModel> {
    const meta = readModelMetadata(bytes);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
    } catch (err) {
      throw new ModelContractError(`onnxruntime refused the model: ${(err as Error).message}`, 'runtime', (err as Error).message);
    }
    try {
      const hasContributions = LoadedModel.checkSignature(session, meta);
      return new LoadedModel(meta, session, hasContributions, origin);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  private static checkSignature(session: ort.InferenceSession, meta: ModelMetadata): boolean {
    const input = tensorMeta(session.inputMetadata, INPUT_NAME);
    if (!input) throw new ModelContractError(`model has no tensor input "${INPUT_NAME}" (inputs: ${session.inputNames.join(', ')})`);
    if (session.inputNames.length !== 1) throw new ModelContractError(`model must have exactly one input, has ${session.inputNames.length}`);
    if (input.type !== 'float32') throw new ModelContractError(`input "${INPUT_NAME}" is ${input.type}, contract 1 needs float32`);
    if (input.shape.length !== 3) throw new ModelContractError(`input "${INPUT_NAME}" has rank ${input.shape.length}, contract 1 needs [batch, window, n_features]`);
    checkDim(input.shape, 1, meta.window, `input "${INPUT_NAME}"`);
    checkDim(input.shape, 2, meta.features.length, `input "${INPUT_NAME}"`);
    const output = tensorMeta(session.outputMetadata, OUTPUT_NAME);
    if (!output) throw new ModelContractError(`model has no tensor output "${OUTPUT_NAME}" (outputs: ${session.outputNames.join(', ')})`);
    if (output.type !== 'float32') throw new ModelContractError(`output "${OUTPUT_NAME}" is ${output.type}, contract 1 needs float32`);
    if (output.shape.length !== 1) throw new ModelContractError(`output "${OUTPUT_NAME}" has rank ${output.shape.length}, contract 1 needs [batch]`);
    return tensorMeta(session.outputMetadata, CONTRIBUTIONS_OUTPUT_NAME) !== undefined;
  }

  get version(): string {
    return this.meta.version;
  }

  /**
   * Scores `batch` windows laid out as [batch, window, n_features] in `input`, in runs of at most
   * RUN_WINDOWS windows. onnxruntime's CPU arena keeps the largest run's intermediate tensors for
   * the life of the session: one run of an 8 192-window micro-batch of the bundled model held
   * 33 MB, runs of 1 024 hold 9 MB and score as fast per window (both measured).
   */
  async run(input: Float32Array, batch: number): Promise<ModelOutput> {
    const stride = this.meta.window * this.meta.features.length;
    if (batch <= RUN_WINDOWS) return this.runOnce(input.subarray(0, batch * stride), batch);
    const scores = new Float32Array(batch);
    const width = this.meta.features.length;
    const contributions = this.hasContributions ? new Float32Array(batch * width) : null;
    for (let from = 0; from < batch; from += RUN_WINDOWS) {
      const n = Math.min(RUN_WINDOWS, batch - from);
      const out = await this.runOnce(input.subarray(from * stride, (from + n) * stride), n);
      scores.set(out.scores, from);
      if (contributions && out.contributions) contributions.set(out.contributions, from * width);
    }
    return { scores, contributions };
  }

  private async runOnce(input: Float32Array, batch: number): Promise<ModelOutput> {
    const { window, features } = this.meta;
    const tensor = new ort.Tensor('float32', input, [batch, window, features.length]);
    const fetches = this.hasContributions ? [OUTPUT_NAME, CONTRIBUTIONS_OUTPUT_NAME] : [OUTPUT_NAME];
    const out = await this.session.run({ [INPUT_NAME]: tensor }, fetches);
    const scores = out[OUTPUT_NAME]!.data as Float32Array;
    if (scores.length !== batch) {
      throw new ModelContractError(`output "${OUTPUT_NAME}" has ${scores.length} values for a batch of ${batch}`);
    }
    const contributions = this.hasContributions ? (out[CONTRIBUTIONS_OUTPUT_NAME]!.data as Float32Array) : null;
    if (contributions && contributions.length !== batch * features.length) {
      throw new ModelContractError(`output "${CONTRIBUTIONS_OUTPUT_NAME}" has ${contributions.length} values for a batch of ${batch} × ${features.length} features`);
    }
    return { scores, contributions };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
