/** The algorithms `--algo` can pick, by CLI name. The first one is the default. */
import type { Algorithm } from './algorithm.js';
import { pcaAlgorithm } from './pca.js';

const ALGORITHMS: Record<string, () => Algorithm> = {
  pca: () => pcaAlgorithm(),
};

export const ALGORITHM_NAMES = Object.keys(ALGORITHMS);
export const DEFAULT_ALGORITHM = 'pca';

export function findAlgorithm(name: string): Algorithm | undefined {
  return Object.hasOwn(ALGORITHMS, name) ? ALGORITHMS[name]?.() : undefined;
}
