/**
 * Schedules. parseSchedule is checked directly against the EventBridge forms. The
 * scheduler is checked through the real server: the tests stop Berth, move a
 * schedule's stored tick back in `.berth/berth.db` to pretend Berth was down across
 * ticks, restart, and read what the handler appended to a file. The schedules there
 * are daily crons whose tick lies two hours back, so no real tick falls inside a
 * test; one test waits for a real minute tick, in parallel with the others.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseSchedule, type Schedule } from '../src/events/schedule-expression.js';
import { sleep, stopWithin, waitFor } from './helpers/lambda.js';
import { makeProject, runCli, startBerth } from './helpers/project.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

// --- parseSchedule --------------------------------------------------------

function parse(expression: string, timezone?: string): Schedule {
  const parsed = parseSchedule(expression, timezone);
  if (typeof parsed === 'string') assert.fail(`"${expression}" should parse, got: ${parsed}`);
  return parsed;
}

/** The next `n` ticks after `from`, as ISO strings. */
function ticks(expression: string, from: string, n: number, timezone?: string): string[] {
  const schedule = parse(expression, timezone);
  const out: string[] = [];
  for (let at = schedule.next(new Date(from)); at && out.length < n; at = schedule.next(at)) out.push(at.toISOString());
  return out;
}

function rejects(expression: string, message: RegExp): void {
  const parsed = parseSchedule(expression);
  assert.equal(typeof parsed, 'string', `"${expression}" should be rejected`);
  assert.match(parsed as string, message);
}

describe('parseSchedule reads EventBridge and cron expressions', () => {
  test('rate() ticks at multiples of the interval since the epoch; singular for 1, plural otherwise', () => {
    assert.deepEqual(ticks('rate(5 minutes)', '2024-01-01T10:02:30Z', 2), ['2024-01-01T10:05:00.000Z', '2024-01-01T10:10:00.000Z']);
    assert.deepEqual(ticks('rate(1 minute)', '2024-01-01T10:00:00Z', 1), ['2024-01-01T10:01:00.000Z'], 'next() is strictly after');
    assert.deepEqual(ticks('rate(2 hours)', '2024-01-01T01:00:00Z', 1), ['2024-01-01T02:00:00.000Z']);
    assert.deepEqual(ticks('rate(1 day)', '2024-01-01T01:00:00Z', 1), ['2024-01-02T00:00:00.000Z']);
    const every5 = parse('rate(5 minutes)');
    assert.equal(every5.latest(new Date('2024-01-01T10:05:00Z'))?.toISOString(), '2024-01-01T10:05:00.000Z', 'latest() includes a tick exactly at its argument');
    assert.equal(every5.latest(new Date('2024-01-01T10:04:59Z'))?.toISOString(), '2024-01-01T10:00:00.000Z');
    rejects('rate(1 minutes)', /singular for 1/);
    rejects('rate(5 minute)', /rate\(5 minutes\)/);
    rejects('rate(0 minutes)', /at least 1/);
    rejects('rate(5 weeks)', /rate\(N minutes\|hours\|days\)/);
  });

  test('cron() has six fields, weekdays 1-7 from Sunday or by name, and needs ? in one day field', () => {
    const weekdays = ['2024-01-01T09:00:00.000Z', '2024-01-02T09:00:00.000Z', '2024-01-03T09:00:00.000Z', '2024-01-04T09:00:00.000Z', '2024-01-05T09:00:00.000Z', '2024-01-08T09:00:00.000Z'];
    assert.deepEqual(ticks('cron(0 9 ? * MON-FRI *)', '2024-01-01T00:00:00Z', 6), weekdays);
    assert.deepEqual(ticks('cron(0 9 ? * 2-6 *)', '2024-01-01T00:00:00Z', 6), weekdays, '2-6 is MON-FRI');
    assert.deepEqual(ticks('cron(0 9 ? * 1 *)', '2024-01-01T00:00:00Z', 1), ['2024-01-07T09:00:00.000Z'], '1 is Sunday');
    assert.deepEqual(ticks('cron(0 9 ? * 7 *)', '2024-01-01T00:00:00Z', 1), ['2024-01-06T09:00:00.000Z'], '7 is Saturday');
    assert.deepEqual(ticks('cron(30 12 1 * ? *)', '2024-01-15T00:00:00Z', 2), ['2024-02-01T12:30:00.000Z', '2024-03-01T12:30:00.000Z']);
    assert.deepEqual(ticks('cron(0/15 * * * ? *)', '2024-01-01T00:00:00Z', 2), ['2024-01-01T00:15:00.000Z', '2024-01-01T00:30:00.000Z'], 'start/step as in the EventBridge docs');
    assert.deepEqual(ticks('cron(0 8 ? JAN,JUL * *)', '2024-01-31T12:00:00Z', 1), ['2024-07-01T08:00:00.000Z'], 'month names');
    rejects('cron(0 9 * * MON *)', /needs "\?"/);
    rejects('cron(0 9 * * ?)', /6 fields/);
    rejects('cron(0 9 ? * 8 *)', /day-of-week 8 is out of range.*1-7/);
    rejects('cron(0 9 ? * 0 *)', /day-of-week 0 is out of range/);
    rejects('cron(61 9 * * ? *)', /invalid schedule/);
  });

  test('cron() understands L, W, # and the year field', () => {
    assert.deepEqual(ticks('cron(0 9 L * ? *)', '2024-01-01T00:00:00Z', 2), ['2024-01-31T09:00:00.000Z', '2024-02-29T09:00:00.000Z'], 'L: last day of the month');
    assert.deepEqual(ticks('cron(0 9 ? * 6L *)', '2024-01-01T00:00:00Z', 2), ['2024-01-26T09:00:00.000Z', '2024-02-23T09:00:00.000Z'], '6L: last Friday');
    assert.deepEqual(ticks('cron(0 9 ? * L *)', '2024-01-01T00:00:00Z', 1), ['2024-01-06T09:00:00.000Z'], 'L alone in day-of-week: Saturday');
    assert.deepEqual(ticks('cron(0 9 15W * ? *)', '2024-06-01T00:00:00Z', 1), ['2024-06-14T09:00:00.000Z'], '15W: Saturday the 15th moves to Friday');
    assert.deepEqual(ticks('cron(0 9 LW * ? *)', '2024-03-01T00:00:00Z', 1), ['2024-03-29T09:00:00.000Z'], 'LW: last weekday of the month');
    assert.deepEqual(ticks('cron(0 9 ? * 3#2 *)', '2024-01-01T00:00:00Z', 2), ['2024-01-09T09:00:00.000Z', '2024-02-13T09:00:00.000Z'], '3#2: second Tuesday');
    assert.deepEqual(ticks('cron(0 9 1 1 ? 2030-2031)', '2024-01-01T00:00:00Z', 3), ['2030-01-01T09:00:00.000Z', '2031-01-01T09:00:00.000Z'], 'no ticks after the last year');
    assert.equal(parse('cron(0 9 1 1 ? 2030)').latest(new Date('2024-01-01T00:00:00Z')), null);
  });

  test('five-field cron counts weekdays from 0 (Sunday, also 7); cron runs in its time zone', () => {
    assert.deepEqual(ticks('0 9 * * 1-5', '2024-01-06T00:00:00Z', 1), ['2024-01-08T09:00:00.000Z']);
    assert.deepEqual(ticks('0 9 * * 0', '2024-01-01T00:00:00Z', 1), ['2024-01-07T09:00:00.000Z']);
    assert.deepEqual(ticks('0 9 * * 7', '2024-01-01T00:00:00Z', 1), ['2024-01-07T09:00:00.000Z']);
    assert.deepEqual(ticks('cron(0 9 * * ? *)', '2024-01-01T00:00:00Z', 1, 'Europe/Berlin'), ['2024-01-01T08:00:00.000Z'], 'winter: UTC+1');
    assert.deepEqual(ticks('0 9 * * *', '2024-07-01T00:00:00Z', 1, 'Europe/Berlin'), ['2024-07-01T07:00:00.000Z'], 'summer: UTC+2');
    rejects('0 9 * *', /5-field cron/);
  });
});

// --- the scheduler, through the real server ---------------------------------

const HANDLER = `import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  appendFileSync(process.env.FIRED_LOG, JSON.stringify({ id: context.awsRequestId, attempt: context.attempt, ranAt: Date.now(), event }) + '\\n');
  return {};
};
`;

interface Fired {
  id: string;
  attempt: number;
  /** When the handler ran (ms since the epoch). */
  ranAt: number;
  event: { time: string; [key: string]: unknown };
}

/** The invocation's record and attempts as Berth's API has them, to say what happened when a timing is off. */
async function invocationRecord(url: string, id: string): Promise<unknown> {
  return (await fetch(`${url}/_berth/invocations/${id}`)).json();
}

interface Fixture {
  dir: string;
  log: string;
  /** Rewrites berth.yml with this schedule event (YAML lines after `- `). */
  configure(schedule: string): void;
  fired(): Fired[];
}

function scheduledProject(schedule: string): Fixture {
  const dir = makeProject({ 'tick.mjs': HANDLER });
  const log = path.join(dir, 'fired.log');
  const configure = (event: string) =>
    writeFileSync(
      path.join(dir, 'berth.yml'),
      `functions:\n  report:\n    handler: tick.handler\n    environment:\n      FIRED_LOG: ${JSON.stringify(log)}\n    events:\n      - ${event.replace(/\n/g, '\n        ')}\n`,
    );
  configure(schedule);
  const fired = () =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as Fired)
      : [];
  return { dir, log, configure, fired };
}

/** Runs Berth on the project for `forMs` after it listens (or until `until` holds), then stops it. */
async function runBerth(dir: string, options: { forMs?: number; until?: () => boolean; what?: string } = {}): Promise<void> {
  const berth = await startBerth(dir);
  try {
    if (options.until) await waitFor(options.until, { what: options.what ?? 'the schedule to fire', timeoutMs: 15_000 });
    if (options.forMs) await sleep(options.forMs);
  } finally {
    assert.equal(await stopWithin(berth), 0, `berth should stop cleanly:\n${berth.output()}`);
  }
}

interface TickRow {
  id: string;
  expression: string;
  tick: number;
}

/** Reads or rewrites `schedule_ticks` while Berth is stopped. */
function ticksTable(dir: string) {
  const open = () => new Database(path.join(dir, '.berth', 'berth.db'));
  return {
    row(id: string): TickRow | undefined {
      const db = open();
      try {
        return db.prepare('SELECT id, expression, last_tick AS tick FROM schedule_ticks WHERE id = ?').get(id) as TickRow | undefined;
      } finally {
        db.close();
      }
    },
    setTick(id: string, tick: number): void {
      const db = open();
      try {
        assert.equal(db.prepare('UPDATE schedule_ticks SET last_tick = ? WHERE id = ?').run(tick, id).changes, 1, `no tick row for ${id}`);
      } finally {
        db.close();
      }
    },
  };
}

/** A daily cron whose most recent tick was two hours ago, so none falls inside a test. */
function dailyTwoHoursAgo(): { expression: string; tick: number; time: string } {
  const tick = Math.floor((Date.now() - 2 * 60 * MINUTE) / MINUTE) * MINUTE;
  const at = new Date(tick);
  return { expression: `cron(${at.getUTCMinutes()} ${at.getUTCHours()} * * ? *)`, tick, time: at.toISOString().replace('.000Z', 'Z') };
}

describe('schedules fire through the real server', { concurrency: true }, () => {
  test('a real minute tick fires once, on time, with a tick-aligned time', async () => {
    const fixture = scheduledProject('schedule: "* * * * *"\ntimezone: Europe/Berlin');
    const berth = await startBerth(fixture.dir);
    try {
      const [first] = await waitFor(() => fixture.fired().length > 0 && fixture.fired(), { what: 'the first minute tick', timeoutMs: 70_000, intervalMs: 20 });
      const tick = Date.parse(first!.event.time);
      assert.match(first!.event.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/, 'a whole minute, no milliseconds');
      const record = await invocationRecord(berth.url, first!.id);
      assert.ok(first!.ranAt - tick < 5_000, `the handler ran ${first!.ranAt - tick} ms after its tick (invocation ${JSON.stringify(record)}):\n${berth.output()}`);
      await sleep(1_000);
      assert.deepEqual(
        fixture.fired().filter((f) => f.event.time === first!.event.time).map((f) => f.attempt),
        [1],
        `one firing per tick, run once:\n${berth.output()}`,
      );
    } finally {
      assert.equal(await stopWithin(berth), 0);
    }
  });

  test('runOnce fires the most recent missed tick exactly once, as an EventBridge Scheduled Event', async () => {
    const daily = dailyTwoHoursAgo();
    const fixture = scheduledProject(`schedule: ${daily.expression}\nmissed: runOnce\ninput: { kind: daily }`);
    const table = ticksTable(fixture.dir);

    // First start: nothing is owed, the row only marks where the schedule starts.
    const before = Date.now();
    await runBerth(fixture.dir, { forMs: 300 });
    const first = table.row('report#0');
    assert.equal(first?.expression, daily.expression);
    assert.ok(first!.tick >= before && first!.tick <= Date.now(), 'a new schedule starts from now');
    assert.deepEqual(fixture.fired(), [], 'no backfill for a new schedule');

    // Pretend Berth was down for three days of ticks.
    table.setTick('report#0', daily.tick - 3 * DAY);
    await runBerth(fixture.dir, { until: () => fixture.fired().length > 0, forMs: 500 });
    const fired = fixture.fired();
    assert.equal(fired.length, 1, `one firing for three missed ticks: ${JSON.stringify(fired)}`);
    const { event } = fired[0]!;
    assert.deepEqual(Object.keys(event).sort(), ['account', 'detail', 'detail-type', 'id', 'region', 'resources', 'source', 'time', 'version']);
    assert.equal(event.time, daily.time, 'the most recent missed tick');
    assert.equal(event.version, '0');
    assert.equal(event['detail-type'], 'Scheduled Event');
    assert.equal(event.source, 'aws.events');
    assert.equal(event.account, '000000000000');
    assert.deepEqual(event.resources, [`arn:aws:events:${event.region}:000000000000:rule/report-0`]);
    assert.deepEqual(event.detail, { kind: 'daily' });
    assert.match(event.id as string, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(table.row('report#0')?.tick, daily.tick, 'the fired tick is recorded');

    // Restarting within the same minute fires nothing again.
    await runBerth(fixture.dir, { forMs: 1_000 });
    assert.equal(fixture.fired().length, 1, 'a restart does not repeat a fired tick');

    // Even with the row set back (it can never lag its event, but suppose it did), the tick's
    // idempotency key keeps the event single, and the row catches up.
    table.setTick('report#0', daily.tick - DAY);
    await runBerth(fixture.dir, { forMs: 1_000 });
    assert.equal(fixture.fired().length, 1, 'the idempotency key stops a second event for the tick');
    assert.equal(table.row('report#0')?.tick, daily.tick);
  });

  test('skip fires nothing for missed ticks and records the latest as handled', async () => {
    const daily = dailyTwoHoursAgo();
    const fixture = scheduledProject(`schedule: ${daily.expression}`);
    const table = ticksTable(fixture.dir);
    await runBerth(fixture.dir, { forMs: 300 });
    table.setTick('report#0', daily.tick - 3 * DAY);

    await runBerth(fixture.dir, { forMs: 1_000 });
    assert.deepEqual(fixture.fired(), []);
    assert.deepEqual(table.row('report#0'), { id: 'report#0', expression: daily.expression, tick: daily.tick });
  });

  test('a changed expression or time zone starts from now, without backfill', async () => {
    const daily = dailyTwoHoursAgo();
    const fixture = scheduledProject(`schedule: ${daily.expression}\nmissed: runOnce`);
    const table = ticksTable(fixture.dir);
    await runBerth(fixture.dir, { forMs: 300 });
    table.setTick('report#0', daily.tick - 3 * DAY);

    fixture.configure(`schedule: ${daily.expression}\ntimezone: UTC\nmissed: runOnce`);
    const before = Date.now();
    await runBerth(fixture.dir, { forMs: 1_000 });
    assert.deepEqual(fixture.fired(), [], 'missed ticks of the old schedule are not owed by the new one');
    const row = table.row('report#0')!;
    assert.equal(row.expression, `${daily.expression} TZ=UTC`);
    assert.ok(row.tick >= before, 'the changed schedule starts from now');
  });

  test('a bad expression or time zone stops berth start, naming the field', async () => {
    const startFails = async (schedule: string) => {
      const fixture = scheduledProject(schedule);
      const result = await runCli(['start', fixture.dir, '--port', '0'], { timeoutMs: 20_000 });
      const output = result.stdout + result.stderr;
      assert.notEqual(result.code, 0, `berth start should fail:\n${output}`);
      assert.doesNotMatch(output, /listening on http/);
      return output;
    };
    const cron = await startFails('schedule: cron(0 9 * * MON *)');
    assert.match(cron, /functions\.report\.events\.0\.schedule/);
    assert.match(cron, /needs "\?" in day-of-month or day-of-week/);

    const rate = await startFails('schedule: rate(1 minutes)');
    assert.match(rate, /functions\.report\.events\.0\.schedule/);
    assert.match(rate, /singular for 1/);

    const zone = await startFails('schedule: cron(0 9 * * ? *)\ntimezone: Mars/Olympus_Mons');
    assert.match(zone, /functions\.report\.events\.0\.timezone/);
    assert.match(zone, /unknown time zone "Mars\/Olympus_Mons"/);
  });
});
