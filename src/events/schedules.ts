/**
 * Schedules: every `schedule` event of a deployed function invokes it asynchronously
 * (of a flow, starts a run) at each tick with an EventBridge "Scheduled Event".
 *
 * Exactly one firing per tick. `schedule_ticks` holds, per schedule, the last tick
 * handled; a firing journals that row with the event's queue insert, in the same
 * transaction (AsyncInvoker.enqueue's `writes`), so after a crash either both exist or
 * neither does, and a restart never fires a recorded tick again. Each event also
 * carries an idempotency key per tick, a second guard should the row ever lag behind.
 *
 * Ticks missed while Berth was down (after the stored tick, up to now) follow the
 * schedule's `missed` policy: `skip` records the latest as handled and fires nothing,
 * `runOnce` fires it. A schedule seen for the first time, or whose expression or time
 * zone changed, owes nothing before now: its row starts at now, no backfill.
 *
 * While Berth runs, each schedule has one timer, armed for its next tick as computed
 * from the expression (never from the last delay, so it does not drift). If the
 * process stalled past several ticks, only the latest of them fires.
 */
import { REGION } from '../runtime/index.js';
import { nameBasedId } from '../ids.js';
import type { EventWrite, Store } from '../store/index.js';
import type { ScheduleSpec } from '../types.js';
import type { Journal } from './journal.js';
import { parseSchedule, type Schedule } from './schedule-expression.js';

export interface SchedulerOptions {
  store: Store;
  journal: Journal;
  onError: (err: unknown) => void;
}

/**
 * What schedules start: a function (its async queue) or a flow (a run). `fire` must store the
 * event together with `writes` (the tick's row), in one transaction.
 */
export interface ScheduledTarget {
  schedules: ScheduleSpec[];
  fire(event: unknown, options: { idempotencyKey: string; writes: EventWrite[] }): Promise<{ duplicate: boolean }>;
}

/** setTimeout fires at once for longer delays; longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Armed {
  spec: ScheduleSpec;
  target: ScheduledTarget;
  /** What the stored row's `expression` must equal for its tick to count: expression and time zone. */
  key: string;
  schedule: Schedule;
  /** The tick the timer waits for. */
  due: number;
  timer?: NodeJS.Timeout;
}

export class Scheduler {
  private armed = new Map<string, Armed>();
  private readonly firing = new Set<Promise<void>>();

  private constructor(
    private readonly options: SchedulerOptions,
    /** The last handled tick per schedule id, as the store has it (or is about to). */
    private readonly handled: Map<string, { key: string; tick: number }>,
  ) {}

  static async open(options: SchedulerOptions): Promise<Scheduler> {
    const rows = await options.store.loadTicks();
    return new Scheduler(options, new Map(rows.map((row) => [row.id, { key: row.expression, tick: row.tick }])));
  }

  /** Replaces the running schedules; an unchanged one keeps its timer, so a reload neither repeats nor skips a tick. */
  deploy(targets: ScheduledTarget[]): void {
    const previous = this.armed;
    this.armed = new Map();
    for (const target of targets) {
      for (const spec of target.schedules) {
        const key = spec.timezone === undefined ? spec.expression : `${spec.expression} TZ=${spec.timezone}`;
        const running = previous.get(spec.id);
        if (running?.key === key) {
          running.spec = spec; // input or missed may have changed
          running.target = target;
          previous.delete(spec.id);
          this.armed.set(spec.id, running);
          continue;
        }
        const schedule = parseSchedule(spec.expression, spec.timezone);
        if (typeof schedule === 'string') throw new Error(`schedule ${spec.id} passed config validation but does not parse: ${schedule}`);
        const entry: Armed = { spec, target, key, schedule, due: 0 };
        this.armed.set(spec.id, entry);
        this.start(entry);
      }
    }
    for (const entry of previous.values()) clearTimeout(entry.timer);
  }

  /** Clears the timers and waits for firings under way, so their writes are journaled before the store closes. */
  async stop(): Promise<void> {
    for (const entry of this.armed.values()) clearTimeout(entry.timer);
    this.armed.clear();
    await Promise.all(this.firing);
  }

  /** Settles what was missed since the stored tick, then arms the timer. */
  private start(entry: Armed): void {
    const now = Date.now();
    const row = this.handled.get(entry.spec.id);
    if (row?.key !== entry.key) {
      this.record(entry, now);
    } else {
      const latest = entry.schedule.latest(new Date(now))?.getTime();
      if (latest !== undefined && latest > row.tick) {
        if (entry.spec.missed === 'runOnce') return this.fire(entry, latest);
        this.record(entry, latest);
      }
    }
    this.arm(entry, now);
  }

  /** Arms the timer for the first tick after `after`; a schedule with no ticks left (a past year) stays idle. */
  private arm(entry: Armed, after: number): void {
    const due = entry.schedule.next(new Date(after))?.getTime();
    if (due === undefined) return;
    entry.due = due;
    this.wait(entry);
  }

  private wait(entry: Armed): void {
    entry.timer = setTimeout(() => this.wake(entry), Math.min(Math.max(0, entry.due - Date.now()), MAX_TIMER_MS));
  }

  private wake(entry: Armed): void {
    const now = Date.now();
    if (now < entry.due) return this.wait(entry); // one step of a long wait, or a timer a little early
    // Normally the due tick itself; after a stall, the latest tick passed. The max guards
    // against a time-zone transition where the two directions of search disagree.
    const latest = entry.schedule.latest(new Date(now))?.getTime() ?? 0;
    this.fire(entry, Math.max(entry.due, latest));
  }

  /** Enqueues the tick's event together with its row, then arms the next tick. */
  private fire(entry: Armed, tick: number): void {
    const { spec } = entry;
    const time = new Date(tick).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const write = tickWrite(entry, tick);
    const firing = entry.target
      .fire(scheduledEvent(spec, tick, time), { idempotencyKey: `schedule:${spec.id}@${time}`, writes: [write] })
      .then(({ duplicate }) => {
        // Queued before, so the tick is handled; the row just lagged behind.
        if (duplicate) this.options.journal.writeBehind(write);
        this.handled.set(spec.id, { key: entry.key, tick });
      })
      // Not stored (the store refused it): this tick is lost while running, and counts as
      // missed after a restart; the schedule goes on with the next one.
      .catch(this.options.onError)
      .finally(() => {
        this.firing.delete(firing);
        if (this.armed.get(spec.id) === entry) this.arm(entry, tick);
      });
    this.firing.add(firing);
  }

  /** Marks `tick` handled without firing: a skipped tick, or the starting point of a new schedule. */
  private record(entry: Armed, tick: number): void {
    this.options.journal.writeBehind(tickWrite(entry, tick));
    this.handled.set(entry.spec.id, { key: entry.key, tick });
  }
}

function tickWrite(entry: Armed, tick: number): EventWrite {
  return { op: 'tick', id: entry.spec.id, expression: entry.key, tick };
}

/** The event EventBridge sends for a scheduled rule; the rule is named `<function>-<event index>`. */
function scheduledEvent(spec: ScheduleSpec, tick: number, time: string): unknown {
  return {
    version: '0',
    id: tickId(spec.id, tick),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time,
    region: REGION,
    resources: [`arn:aws:events:${REGION}:000000000000:rule/${spec.id.replace(/#(\d+)$/, '-$1')}`],
    detail: spec.input ?? {},
  };
}

/** The same tick always has the same event id. */
function tickId(scheduleId: string, tick: number): string {
  return nameBasedId(`${scheduleId}@${tick}`);
}
