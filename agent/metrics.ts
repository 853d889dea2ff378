/**
 * A small Prometheus registry: counters, gauges and counters read at scrape time, and histograms.
 * Text exposition format 0.0.4 (`GET /metrics`).
 */
type Labels = Record<string, string>;

const labelText = (labels: Labels): string => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(by = 1, labels: Labels = {}): void {
    const key = labelText(labels);
    const cur = this.values.get(key);
    if (cur) cur.value += by;
    else this.values.set(key, { labels, value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join('\n');
  }
}

type Read = () => number | Array<{ labels: Labels; value: number }>;

/** A value read at scrape time: a gauge, or a counter that another part keeps (in SQLite, in its own state). */
export class Sampled {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter',
    private readonly read: Read,
  ) {}

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    const v = this.read();
    if (typeof v === 'number') lines.push(`${this.name} ${v}`);
    else for (const { labels, value } of v) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join('\n');
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number, times = 1): void {
    this.sum += value * times;
    this.count += times;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]! += times;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export class MetricsRegistry {
  private readonly metrics: Array<Counter | Sampled | Histogram> = [];

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }

  gauge(name: string, help: string, read: Read): Sampled {
    return this.add(new Sampled(name, help, 'gauge', read));
  }

  /** A monotonic count kept elsewhere (e.g. rows evicted, persisted in SQLite), read at scrape time. */
  counterFrom(name: string, help: string, read: Read): Sampled {
    return this.add(new Sampled(name, help, 'counter', read));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }

  private add<T extends Counter | Sampled | Histogram>(m: T): T {
    this.metrics.push(m);
    return m;
  }

  render(): string {
    return `${this.metrics.map((m) => m.render()).join('\n')}\n`;
  }
}

/** Seconds buckets for latencies from 0.1 ms to 5 s. */
export const LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The agent's core metrics, shared by ingest, the status server and the sync. */
export function createAgentMetrics(registry: MetricsRegistry) {
  return {
    accepted: registry.counter('pumpwatch_readings_accepted_total', 'Readings accepted and committed'),
    rejected: registry.counter('pumpwatch_readings_rejected_total', 'Readings refused by validation, kept in the rejected table'),
    scored: registry.counter('pumpwatch_readings_scored_total', 'Readings scored by a model'),
    unscored: registry.counter('pumpwatch_readings_unscored_total', 'Readings stored without a score (no model, no value yet, pump stopped, model fault)'),
    anomalies: registry.counter('pumpwatch_anomalies_total', 'Readings whose score exceeded the threshold'),
    imputed: registry.counter('pumpwatch_readings_imputed_total', 'Readings scored with a value carried forward'),
    inferenceSeconds: registry.histogram('pumpwatch_inference_seconds', 'Duration of one micro-batch inference (all models)', LATENCY_BUCKETS),
    commitSeconds: registry.histogram('pumpwatch_commit_seconds', 'Duration of one micro-batch SQLite commit', LATENCY_BUCKETS),
    readingLatencySeconds: registry.histogram('pumpwatch_reading_to_commit_seconds', 'From a reading being accepted to its commit', LATENCY_BUCKETS),
    batchSize: registry.histogram('pumpwatch_batch_readings', 'Readings per micro-batch', [1, 4, 16, 64, 256, 1024, 4096, 16384]),
  };
}

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;
