/**
 * The simulator's seeded random-number generator: mulberry32 uniforms and polar Box–Muller normals,
 * with independent streams per seed. Every random draw of the simulator comes from here, in a
 * fixed order, so that a seed reproduces its readings exactly.
 */
/** Seeded PRNG: mulberry32 uniforms, Box–Muller (polar) normals; `stream` selects an independent sequence. */
export class Rng {
  private state: number;
  private spare = Number.NaN;

  constructor(seed: number, stream = 0) {
    let h = (Math.trunc(seed) ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    this.state = (h ^ (h >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box–Muller, polar form: no trigonometry). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const z = this.spare;
      this.spare = Number.NaN;
      return z;
    }
    let x: number;
    let y: number;
    let r2: number;
    do {
      x = 2 * this.uniform() - 1;
      y = 2 * this.uniform() - 1;
      r2 = x * x + y * y;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.spare = y * f;
    return x * f;
  }
}
