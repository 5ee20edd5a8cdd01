/** Lambda's START / END / REPORT lines around an invocation's own output. */
export interface ReportFields {
  id: string;
  /** Shown on retries only, so first attempts read exactly like Lambda's. */
  attempt: number;
  durationMs: number;
  billedMs: number;
  memoryMb: number;
  maxMemoryMb: number;
  initDurationMs?: number;
}

export function formatInvocationLog(parts: { initLog?: string; output: string; trailer?: string; report: ReportFields }): string {
  const { report } = parts;
  const output = parts.output === '' || parts.output.endsWith('\n') ? parts.output : `${parts.output}\n`;
  const init = report.initDurationMs === undefined ? '' : `\tInit Duration: ${report.initDurationMs.toFixed(2)} ms`;
  return (
    (parts.initLog ?? '') +
    `START RequestId: ${report.id} Version: $LATEST${report.attempt > 1 ? ` Attempt: ${report.attempt}` : ''}\n` +
    output +
    (parts.trailer ?? '') +
    `END RequestId: ${report.id}\n` +
    `REPORT RequestId: ${report.id}\tDuration: ${report.durationMs.toFixed(2)} ms\tBilled Duration: ${report.billedMs} ms\t` +
    `Memory Size: ${report.memoryMb} MB\tMax Memory Used: ${report.maxMemoryMb} MB${init}\t\n`
  );
}
