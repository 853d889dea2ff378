/**
 * Scores rows of a series with an ONNX model in onnxruntime-node, as the agent runs it: the
 * model's features are taken from the series by name, each row is scored with the window of
 * readings ending at it, padded with the first reading of its segment (windows never reach back
 * across a gap). Batches keep memory flat on long series.
 */
import '../../inference/ort-telemetry.js'; // before onnxruntime-node: see there
import ort from 'onnxruntime-node';
import { INPUT_NAME, OUTPUT_NAME, readModelMetadata, type ModelMetadata } from '../../inference/contract.js';
import type { Series } from '../data/series.js';
import { TrainerError } from '../errors.js';

const BATCH = 2048;

export interface Rows {
  features: readonly string[];
  rows: readonly Float64Array[];
  /** Indices that start a segment, ascending, 0 first. */
  segmentStarts: readonly number[];
}

export class OnnxScorer {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly metadata: ModelMetadata,
  ) {}

  static async load(bytes: Uint8Array): Promise<OnnxScorer> {
    const metadata = readModelMetadata(bytes);
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    return new OnnxScorer(session, metadata);
  }

  /** Features of the model missing from `features` (empty when it can score them). */
  missingFeatures(features: readonly string[]): string[] {
    return this.metadata.features.filter((f) => !features.includes(f));
  }

  /** Scores of the rows at `indices` (ascending). */
  async score(data: Rows, indices: readonly number[]): Promise<Float32Array> {
    const missing = this.missingFeatures(data.features);
    if (missing.length > 0) throw new TrainerError('PW_TRAINER_NO_DATA', `model ${this.metadata.version} needs features the data lacks: ${missing.join(', ')}`);
    const columns = this.metadata.features.map((f) => data.features.indexOf(f));
    const w = this.metadata.window;
    const n = columns.length;
    const out = new Float32Array(indices.length);
    let seg = 0;
    for (let start = 0; start < indices.length; start += BATCH) {
      const part = indices.slice(start, start + BATCH);
      const input = new Float32Array(part.length * w * n);
      part.forEach((i, b) => {
        while (seg + 1 < data.segmentStarts.length && (data.segmentStarts[seg + 1] as number) <= i) seg++;
        const first = data.segmentStarts[seg] ?? 0;
        for (let t = 0; t < w; t++) {
          const row = data.rows[Math.max(first, i - (w - 1) + t)] as Float64Array;
          const base = (b * w + t) * n;
          for (let f = 0; f < n; f++) input[base + f] = row[columns[f] as number] as number;
        }
      });
      const result = await this.session.run({ [INPUT_NAME]: new ort.Tensor('float32', input, [part.length, w, n]) });
      out.set(result[OUTPUT_NAME]?.data as Float32Array, start);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The series as scorer input, with its segments. */
export function rowsOf(series: Series, segmentStarts: readonly number[]): Rows {
  return { features: series.features, rows: series.rows, segmentStarts };
}
