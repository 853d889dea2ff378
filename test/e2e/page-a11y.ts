/**
 * Accessibility checks run inside the page (passed to page.evaluate, so each function is
 * self-contained; the DOM is reached through globalThis because the project compiles without DOM types).
 */

/** Controls without an accessible name: inputs, selects and textareas need a <label>, buttons a text. */
export function accessibilityProblems(): string[] {
  const doc = (globalThis as any).document;
  const problems: string[] = [];
  const describe = (el: any): string => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.name ? `[name=${el.name}]` : ''}`;
  for (const el of doc.querySelectorAll('input, select, textarea')) {
    const named = el.labels?.length > 0 || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) problems.push(`${describe(el)} has no label`);
  }
  for (const el of doc.querySelectorAll('button, a[href], summary')) {
    const name = (el.getAttribute('aria-label') ?? el.textContent ?? '').trim();
    if (!name) problems.push(`${describe(el)} has no accessible name`);
  }
  for (const el of doc.querySelectorAll('[tabindex]')) {
    if (Number(el.getAttribute('tabindex')) > 0) problems.push(`${describe(el)} has a positive tabindex`);
  }
  if (!doc.documentElement.lang) problems.push('<html> has no lang');
  return problems;
}

/**
 * Visible text whose contrast with its background is below WCAG AA: 4.5:1, or 3:1 for large text
 * (≥ 24 px, or ≥ 18.66 px bold). The background is the nearest opaque ancestor's colour.
 */
export function contrastProblems(): string[] {
  const g = globalThis as any;
  const doc = g.document;
  const parse = (c: string): number[] => (c.match(/[\d.]+/g) ?? []).map(Number);
  const lum = ([r, gg, b]: number[]): number => {
    const f = (v: number) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r!) + 0.7152 * f(gg!) + 0.0722 * f(b!);
  };
  const background = (el: any): number[] => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(g.getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length === 3 || c[3]! > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems: string[] = [];
  const walker = doc.createTreeWalker(doc.body, 4 /* NodeFilter.SHOW_TEXT */);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || seen.has(el) || !node.textContent.trim()) continue;
    seen.add(el);
    const style = g.getComputedStyle(el);
    if (style.visibility === 'hidden' || el.getClientRects().length === 0 || el.closest('[hidden], dialog:not([open])')) continue;
    const bg = background(el);
    const raw = parse(style.color);
    const alpha = raw.length === 4 ? raw[3]! : 1;
    const fg = bg.map((v, i) => raw[i]! * alpha + v * (1 - alpha)); // text colour as drawn over bg
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1! + 0.05) / (l2! + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`"${node.textContent.trim().slice(0, 40)}" ${style.color} on rgb(${bg.join(', ')}): ${ratio.toFixed(2)}:1`);
  }
  return problems;
}
