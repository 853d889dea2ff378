/**
 * Every `train` run's evaluation of its version, written once under
 * models/{source}/{version}/evaluations/ (sync/layout.ts evaluationBlobName). model.json is the
 * version's identity record and is written once: a rerun of the range after technicians changed
 * the labels makes the same bytes, hence the same version, and its evaluation would otherwise be
 * printed and lost, leaving the registry with the first run's figures and verdict only.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { evaluationBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import type { EvaluationRecord } from './records.js';
import { createOnce } from './register.js';

/** Names tried before giving up: a clash of two random ids in the same millisecond is already unlikely. */
const ATTEMPTS = 3;

/** Writes `evaluation` (If-None-Match: *) and returns its blob name. */
export async function recordEvaluation(container: ContainerClient, evaluation: EvaluationRecord): Promise<string> {
  const body = Buffer.from(`${JSON.stringify(evaluation, null, 2)}\n`);
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const name = evaluationBlobName(evaluation.source, evaluation.version, new Date(evaluation.createdAt), randomBytes(4).toString('hex'));
    if ((await createOnce(container, name, body, 'application/json')) !== null) return name;
  }
  throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `every name tried for this run's evaluation of ${evaluation.version} under ${evaluationBlobName(evaluation.source, evaluation.version, new Date(evaluation.createdAt), 'x').replace(/[^/]+$/, '')} was taken`);
}
