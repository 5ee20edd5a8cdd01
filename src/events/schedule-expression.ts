/**
 * Schedule expressions as EventBridge writes them, plus plain cron:
 *  - `rate(5 minutes)`: ticks at whole multiples of the interval since the epoch, so a
 *    restart lands on the same ticks as before it. As in EventBridge, the unit is
 *    singular for 1 and plural otherwise;
 *  - `cron(0 9 * * ? *)`: EventBridge's six fields (minute hour day-of-month month
 *    day-of-week year), weekdays 1-7 = SUN-SAT or SUN-SAT names, `?` = any, `L` (last day
 *    of the month, or `6L` = last Friday; `L` alone in day-of-week = Saturday), `W`
 *    (nearest weekday, `LW`), `#` (`2#1` = first Monday), `0/15` = every 15 from 0;
 *  - `0 9 * * 1-5`: standard five-field cron (weekdays 0-7, Sunday is 0 or 7).
 * Cron expressions run in the schedule's time zone (UTC unless one is given).
 */
import { Cron } from 'croner';

export interface Schedule {
  /** The first tick strictly after `after`, or null when there is none (a past year). */
  next(after: Date): Date | null;
  /** The last tick at or before `at`, or null when there was none. */
  latest(at: Date): Date | null;
}

const RATE = /^rate\(\s*(\d+)\s+(minute|hour|day)(s?)\s*\)$/;
const UNIT_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/** Returns the schedule, or a message saying what is wrong and what a valid one looks like. */
export function parseSchedule(expression: string, timezone?: string): Schedule | string {
  const text = expression.trim();
  if (text.startsWith('rate(')) return parseRate(text, expression);

  let pattern: string;
  let eventBridge = false;
  if (text.startsWith('cron(') && text.endsWith(')')) {
    const fields = text.slice(5, -1).trim().split(/\s+/);
    if (fields.length !== 6) {
      return `cron() takes 6 fields (minute hour day-of-month month day-of-week year), got ${fields.length} in "${expression}"; e.g. cron(0 9 * * ? *)`;
    }
    const [minute, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
    if (dom !== '?' && dow !== '?') {
      return `cron() needs "?" in day-of-month or day-of-week (one of them), got "${expression}"; e.g. cron(0 9 ? * MON-FRI *)`;
    }
    // Croner would take 8 for Sunday again and reject 0 with an unclear message.
    const weekday = dow.replace(/[#/]\w+/g, '').match(/\d+/g)?.find((n) => Number(n) < 1 || Number(n) > 7);
    if (weekday !== undefined) {
      return `cron() day-of-week ${weekday} is out of range in "${expression}": use 1-7 (1 = SUN, 7 = SAT) or SUN-SAT`;
    }
    // Croner reads `?` as "any", as EventBridge does. `L` alone in day-of-week is the
    // last day of the week, Saturday; croner only knows `6L` (the last Friday).
    pattern = ['0', minute, hour, dom, month, dow === 'L' ? '7' : dow, year].join(' ');
    eventBridge = true;
  } else {
    const fields = text.split(/\s+/);
    if (fields.length !== 5) {
      return `expected rate(N minutes), cron(minute hour day month weekday year) or a 5-field cron expression, got "${expression}"`;
    }
    pattern = `0 ${text}`;
  }

  try {
    const cron = new Cron(pattern, {
      timezone: timezone ?? 'UTC',
      mode: eventBridge ? '7-part' : '6-part',
      // EventBridge numbers weekdays 1-7 from Sunday and writes steps as `0/15`.
      alternativeWeekdays: eventBridge,
      sloppyRanges: eventBridge,
      // Day-of-month and day-of-week: either may match, as in Vixie cron (EventBridge has one of them `?`).
      domAndDow: false,
    });
    return {
      next: (after) => cron.nextRun(after),
      // previousRuns() leaves out a run exactly at its reference, so look from 1 ms later.
      latest: (at) => cron.previousRuns(1, new Date(at.getTime() + 1))[0] ?? null,
    };
  } catch (err) {
    return `invalid schedule "${expression}": ${(err as Error).message}`;
  }
}

function parseRate(text: string, expression: string): Schedule | string {
  const rate = RATE.exec(text);
  if (!rate) return `invalid rate expression "${expression}": use rate(N minutes|hours|days), e.g. rate(5 minutes)`;
  const count = Number(rate[1]);
  const unit = rate[2] as keyof typeof UNIT_MS;
  if (count < 1) return `rate must be at least 1, got "${expression}"`;
  if ((count === 1) === (rate[3] === 's')) {
    return `rate(${count} ...) takes "${count === 1 ? unit : `${unit}s`}", got "${expression}": the unit is singular for 1 and plural otherwise, e.g. rate(1 ${unit}), rate(5 ${unit}s)`;
  }
  const every = count * UNIT_MS[unit];
  return {
    next: (after) => new Date((Math.floor(after.getTime() / every) + 1) * every),
    latest: (at) => new Date(Math.floor(at.getTime() / every) * every),
  };
}
