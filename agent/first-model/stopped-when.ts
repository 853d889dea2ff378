/**
 * PUMPWATCH_FIRST_MODEL_STOPPED_WHEN (twin `firstModel.stoppedWhen`): the stopped-when rule the
 * first models are fitted with instead of the default model's, in `pumpwatch-trainer
 * --stopped-when` syntax (trainer/data/stopped.ts): "FEATURE<NUMBER", several joined by "&", or
 * "none" (fitted without a rule). Unset: the default model's rule.
 */
import type { StoppedRule } from '../../inference/contract.js';
import { parseStoppedWhenOption } from '../../trainer/data/stopped.js';

export const FIRST_MODEL_STOPPED_WHEN_ENV = 'PUMPWATCH_FIRST_MODEL_STOPPED_WHEN';

/** The rule the setting gives: undefined when unset (the default model's), null for "none". Throws with what is wrong. */
export function firstModelStoppedRule(text: string | undefined): StoppedRule | null | undefined {
  if (text === undefined) return undefined;
  try {
    return parseStoppedWhenOption(text.trim(), undefined);
  } catch (err) {
    // The trainer names its option; here it is the setting (named by the config's error).
    throw new Error((err as Error).message.replace(/^--stopped-when "[^]*?": /, ''));
  }
}

/** Why the setting's text is no rule, or null when it is one. */
export function firstModelStoppedWhenProblem(text: string | undefined): string | null {
  try {
    firstModelStoppedRule(text);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
