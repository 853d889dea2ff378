/**
 * A model file given by path (the bundled one, or PUMPWATCH_DEFAULT_MODEL): loaded as contract 1 or 2,
 * or refused with the reason in plain words (no such file, not ONNX, not our contract).
 */
import { readFile } from 'node:fs/promises';
import { fileProblem } from '../lib/file-problem.js';
import { ModelContractError } from './contract.js';
import { LoadedModel } from './model.js';

/** A model file given by path (the bundled one, or PUMPWATCH_DEFAULT_MODEL) that cannot be used; `reason` in plain words. */
export class ModelFileError extends Error {
  readonly code = 'PW_MODEL_FILE';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`model file ${path}: ${reason}`);
    this.name = 'ModelFileError';
  }
}

/** Loads a contract-1 or -2 model from a file; a ModelFileError says in plain words why one cannot be used. */
export async function loadModelFile(path: string): Promise<LoadedModel> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ModelFileError(path, fileProblem(err as NodeJS.ErrnoException, 'a model file'));
  }
  try {
    return await LoadedModel.fromBytes(bytes, path);
  } catch (err) {
    if (err instanceof ModelContractError) throw new ModelFileError(path, contractProblem(err));
    throw err;
  }
}

/** The contract check's failure, said as "not ONNX at all", "ONNX onnxruntime refuses" or "ONNX, but not our contract". */
function contractProblem(err: ModelContractError): string {
  switch (err.problem) {
    case 'not-onnx':
      return `not an ONNX model: ${err.detail}`;
    case 'runtime':
      return `not an ONNX model onnxruntime can load: ${err.detail}`;
    case 'contract':
      return `not a PumpWatch model this agent reads (contract 1 or 2): ${err.message}`;
  }
}
