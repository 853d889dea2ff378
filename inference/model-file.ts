/**
 * A model file given by path (the bundled one, or PUMPWATCH_DEFAULT_MODEL): loaded as contract 1,
 * or refused with the reason in plain words (no such file, not ONNX, not our contract).
 */
import { readFile } from 'node:fs/promises';
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

/** Loads a contract-1 model from a file; a ModelFileError says in plain words why one cannot be used. */
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

/** Why a file given by path cannot be read, in plain words; `kind` is what it should be (`a model file`). */
export function fileProblem(err: NodeJS.ErrnoException, kind: string): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'ENOTDIR':
      return 'no such file (a folder on its path is a file)';
    case 'EISDIR':
      return `is a folder, not ${kind}`;
    case 'EACCES':
    case 'EPERM':
      return 'not readable (permission denied)';
    default:
      return `cannot be read (${err.message})`;
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
      return `not a PumpWatch contract-1 model: ${err.message}`;
  }
}
