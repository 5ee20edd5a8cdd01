/**
 * Schedule expressions as EventBridge writes them, plus plain cron:
 *  - `rate(5 minutes)`: ticks at whole multiples of the interval since the epoch, so a
 *    restart lands on the same ticks as before it;
 *  - `cron(0 9 * * ? *)`: EventBridge's six fields (minute hour day month weekday year,
 *    weekdays 1-7 = SUN-SAT, `?` = any);
 *  - `0 9 * * 1-5`: standard five-field cron.
 * Cron expressions run in the schedule's time zone (UTC unless one is given).
 */
import { Cron } from 'croner';

export interface Schedule {
  /** The first tick strictly after `after`, or null when there is none (a past year). */
  next(after: Date): Date | null;
}

const RATE = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/;
const UNIT_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/** Returns the schedule, or a message saying what is wrong and what a valid one looks like. */
export function parseSchedule(expression: string, timezone?: string): Schedule | string {
  const text = expression.trim();
  const rate = RATE.exec(text);
  if (rate) {
    const count = Number(rate[1]);
    if (count < 1) return `rate must be at least 1, got "${expression}"`;
    const every = count * UNIT_MS[rate[2]!.replace(/s$/, '') as keyof typeof UNIT_MS];
    return { next: (after) => new Date((Math.floor(after.getTime() / every) + 1) * every) };
  }
  if (text.startsWith('rate(')) {
    return `invalid rate expression "${expression}": use rate(N minutes|hours|days), e.g. rate(5 minutes)`;
  }

  let pattern: string;
  let quartzWeekdays = false;
  if (text.startsWith('cron(') && text.endsWith(')')) {
    const fields = text.slice(5, -1).trim().split(/\s+/);
    if (fields.length !== 6) {
      return `cron() takes 6 fields (minute hour day-of-month month day-of-week year), got ${fields.length} in "${expression}"; e.g. cron(0 9 * * ? *)`;
    }
    const [minute, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
    if (dom !== '?' && dow !== '?') {
      return `cron() needs "?" in day-of-month or day-of-week (one of them), got "${expression}"; e.g. cron(0 9 ? * MON-FRI *)`;
    }
    // `?` means "any" here; croner would read it as "the current value".
    const any = (field: string) => (field === '?' ? '*' : field);
    const weekday = any(dow).replace(/^(\w+)L$/, '$1#L');
    pattern = ['0', minute, hour, any(dom), month, weekday, year].join(' ');
    quartzWeekdays = true;
  } else {
    const fields = text.split(/\s+/);
    if (fields.length !== 5) {
      return `expected rate(N minutes), cron(minute hour day month weekday year) or a 5-field cron expression, got "${expression}"`;
    }
    pattern = `0 ${text}`;
  }

  try {
    const cron = new Cron(pattern, {
      paused: true,
      ...(timezone ? { timezone } : { timezone: 'UTC' }),
      mode: quartzWeekdays ? '7-part' : '6-part',
      alternativeWeekdays: quartzWeekdays,
      domAndDow: false,
    });
    return { next: (after) => cron.nextRun(after) };
  } catch (err) {
    return `invalid schedule "${expression}": ${(err as Error).message}`;
  }
}
