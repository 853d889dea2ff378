/** The algorithms `--algo` can pick, by CLI name. The default is chosen in trainer/QUALITY.md. */
import type { Algorithm } from './algorithm.js';
import { msetAlgorithm } from './mset.js';
import { pcaAlgorithm } from './pca.js';

const ALGORITHMS: Record<string, () => Algorithm> = {
  mset: () => msetAlgorithm(),
  'mset-rel': () => msetAlgorithm({ relations: true }),
  pca: () => pcaAlgorithm(),
};

export const ALGORITHM_NAMES = Object.keys(ALGORITHMS);
export const DEFAULT_ALGORITHM = 'mset';

export function findAlgorithm(name: string): Algorithm | undefined {
  return Object.hasOwn(ALGORITHMS, name) ? ALGORITHMS[name]?.() : undefined;
}
