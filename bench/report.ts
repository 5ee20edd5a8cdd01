// What every benchmark prints: environment-variable settings, measurements that fail into
// error rows instead of ending the run, and markdown tables for docs/benchmarks.md.

export function positive(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${process.env[name]}`);
  return v;
}

/** Runs one measurement; a failure is logged and returned, never thrown, so the run goes on. */
export async function attempt<T>(label: string, fn: () => Promise<T>): Promise<T | Error> {
  console.log(`… ${label}`);
  try {
    return await fn();
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    console.log(`  failed: ${error.message}`);
    return error;
  }
}

export const ms = (v: number) => v.toFixed(2);
export const times = (v: number) => `${v.toFixed(2)}×`;
export const met = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'yes' : 'NO');

export function table(head: string[], rows: string[][]): string {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i]!)).join(' | ')} |`;
  return [line(head), line(width.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
