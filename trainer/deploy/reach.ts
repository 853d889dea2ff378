/**
 * One cheap call to IoT Hub before a `train-all --deploy` trains anything: the call the deploys
 * make first, on one twin at most. With a hub that cannot be reached (a host that does not
 * resolve, a key it refuses) every source was trained, then each deploy failed (`33 promoted … 33
 * deploy pending`, exit 1), and the Job trained the whole shard twice more.
 */
import type { TwinRegistry } from '../cloud/context.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError } from '../errors.js';
import type { ModuleTarget } from './twin.js';

const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The host name of an IoT Hub connection string (`HostName=…`), never its key; null without one. */
export function hubHost(connectionString: string | undefined): string | null {
  const m = /(?:^|;)\s*HostName=([^;]+)/i.exec(connectionString ?? '');
  return m ? (m[1] as string).trim() : null;
}

/**
 * Reads what a deploy to `target` reads first, one twin at most: the named module's twin, or the
 * first page (of 1) of a twin query (the one given, or every module of the id, as the default
 * per-source query asks for). Throws PW_TRAINER_DEPLOY naming the hub (`host`) when it fails.
 */
export async function checkHubAnswers(registry: TwinRegistry, target: ModuleTarget | { moduleId: string }, host: string | null): Promise<void> {
  const named = 'module' in target ? target.module : null;
  const what = named ? `reading the twin of ${named.deviceId}/${named.moduleId}` : 'a twin query';
  const sql = 'module' in target ? '' : 'query' in target ? target.query : `SELECT * FROM devices.modules WHERE moduleId = ${quote(target.moduleId)}`;
  try {
    if (named) await registry.getModuleTwin(named.deviceId, named.moduleId);
    else await registry.createQuery(sql, 1).nextAsTwin();
  } catch (err) {
    throw new TrainerError(
      'PW_TRAINER_DEPLOY',
      `IoT Hub ${host ?? '(PUMPWATCH_IOTHUB_CONNECTION_STRING)'}: ${what}, made before training, failed (${safeErrorMessage(err)}): training was not started, as every deploy of this run would fail the same way`,
      { cause: err },
    );
  }
}
