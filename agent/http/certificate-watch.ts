/**
 * The status endpoint's certificate by the gateway's clock, while the agent runs: an agent that
 * runs for months passes the certificate's expiry, and browsers then refuse the page. Checked at
 * start and on a scheduler tick (agent/main.ts); the log says each change of state once (valid,
 * expiring within EXPIRY_WARN_DAYS, expired, not valid yet); /status (`tls`) and /healthz (the
 * `http-tls` check, degraded, hence the page's Health line) say it as of the moment they answer.
 * The files are read at start only: a renewed certificate needs a restart, as the messages say.
 */
import { CONFIG_KEYS } from '../config.js';
import type { StatusTls } from './tls.js';

/** A certificate that expires within this many days is said ahead (browsers refuse it from then on). */
export const EXPIRY_WARN_DAYS = 14;
const DAY_MS = 86_400_000;

export type CertificateState = 'valid' | 'expires-soon' | 'expired' | 'not-yet-valid';

/** The certificate served, as /status shows it. */
export interface CertificateView {
  subject: string;
  validFrom: string;
  validTo: string;
  state: CertificateState;
  /** Days until validTo (one decimal; negative once expired). */
  expiresInDays: number;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class CertificateWatch {
  private tls: StatusTls | null = null;
  /** The state the log said last (null: nothing said yet). */
  private said: CertificateState | null = null;

  constructor(private readonly options: { clock: () => number; logger: Logger }) {}

  /** The certificate served from now on (null: plain HTTP); its state is logged at once. */
  serve(tls: StatusTls | null): void {
    this.tls = tls;
    this.said = null;
    this.check();
  }

  /** Logs the certificate's state when it changed since the last check (a scheduler tick). */
  check(): void {
    const tls = this.tls;
    if (tls === null) return;
    const state = stateAt(tls, this.options.clock());
    if (state === this.said) return;
    this.said = state;
    const { logger } = this.options;
    const fields = { subject: tls.subject, subjectAltName: tls.subjectAltName, validFrom: tls.validFrom.toISOString(), validTo: tls.validTo.toISOString(), state };
    const message = describe(tls, state, this.options.clock());
    if (state === 'valid') logger.info(fields, message);
    else logger.warn(fields, message);
  }

  /** The certificate served now, or null for plain HTTP. */
  view(): CertificateView | null {
    const tls = this.tls;
    if (tls === null) return null;
    const now = this.options.clock();
    return {
      subject: tls.subject,
      validFrom: tls.validFrom.toISOString(),
      validTo: tls.validTo.toISOString(),
      state: stateAt(tls, now),
      expiresInDays: Math.round(((tls.validTo.getTime() - now) / DAY_MS) * 10) / 10,
    };
  }

  /** For /healthz: the endpoint works, but a certificate browsers refuse (or soon will) is for a person to know. */
  health(): { ok: boolean; degraded?: string } {
    const tls = this.tls;
    if (tls === null) return { ok: true };
    const now = this.options.clock();
    const state = stateAt(tls, now);
    return state === 'valid' ? { ok: true } : { ok: true, degraded: describe(tls, state, now) };
  }
}

export function stateAt(tls: Pick<StatusTls, 'validFrom' | 'validTo'>, now: number): CertificateState {
  if (now > tls.validTo.getTime()) return 'expired';
  if (now < tls.validFrom.getTime()) return 'not-yet-valid';
  return tls.validTo.getTime() - now <= EXPIRY_WARN_DAYS * DAY_MS ? 'expires-soon' : 'valid';
}

function describe(tls: StatusTls, state: CertificateState, now: number): string {
  const validTo = tls.validTo.toISOString();
  const replace = `replace ${CONFIG_KEYS.httpTlsCertFile.env} and ${CONFIG_KEYS.httpTlsKeyFile.env} and restart`;
  switch (state) {
    case 'expired':
      return `the status endpoint's certificate expired at ${validTo}: browsers refuse it; ${replace}`;
    case 'not-yet-valid':
      return `the status endpoint's certificate is valid only from ${tls.validFrom.toISOString()} (is the gateway clock behind?): browsers refuse it until then`;
    case 'expires-soon': {
      const days = (tls.validTo.getTime() - now) / DAY_MS;
      const left = days < 1 ? `${Math.max(1, Math.round(days * 24))} h` : `${days.toFixed(1)} days`;
      return `the status endpoint's certificate expires at ${validTo} (in ${left}): browsers refuse it from then on; ${replace} before`;
    }
    default:
      return 'status endpoint certificate';
  }
}
