import type { Database } from '../../db/database.ts';

/** A wake-up armed on a clock; cancelling it twice, or after it fired, does nothing. */
export interface ClockTimer {
  cancel(): void;
}

/**
 * Where the workflow engine takes the time from and how it is woken. Every due-ness decision
 * (timers, approval deadlines, back-off, leases, schedules, date triggers, pruning) compares
 * against `now()` — bound into the SQL, never the database's `now()` — and every background loop
 * sleeps on `setTimer`, so a test can move time by hand and see exactly the work that came due.
 */
export interface Clock {
  now(): Date;
  /**
   * Calls `fn` once `ms` have passed on this clock. A promise `fn` returns is the clock's to await
   * (a manual clock finishes it before moving on); `fn` handles its own errors.
   */
  setTimer(ms: number, fn: () => unknown): ClockTimer;
  /** Brings `now()` in line with its source; clocks without one leave it out. */
  sync?(): Promise<void>;
}

/** Calls `fn` every `ms` on `clock` (re-armed when it is called, not when its promise settles: like setInterval). */
export function every(clock: Clock, ms: number, fn: () => unknown): ClockTimer {
  let timer: ClockTimer | undefined;
  let stopped = false;
  const arm = () => {
    timer = clock.setTimer(ms, () => {
      if (stopped) return undefined;
      arm();
      return fn();
    });
  };
  arm();
  return { cancel: () => { stopped = true; timer?.cancel(); } };
}

/** A slower round trip leaves the offset as it was: it could be off by half of it. */
const MAX_SYNC_RTT_MS = 100;

/**
 * The real clock: the host's timers, with the database's time. Due-ness used to be the database's
 * `now()`, which every process on every host shares; the offset to it, measured at start and on
 * each refresh, keeps that so — a host whose clock is a minute off neither takes over leases
 * early nor leaves work due on another host waiting.
 */
export class DatabaseClock implements Clock {
  private offsetMs = 0;
  private last = 0;

  constructor(private readonly db: Database) {}

  now(): Date {
    // Never backwards (a new offset may be a little smaller): a row stamped due a moment ago
    // must not stop being due.
    this.last = Math.max(this.last, Date.now() + this.offsetMs);
    return new Date(this.last);
  }

  setTimer(ms: number, fn: () => unknown): ClockTimer {
    const timer = setTimeout(() => void fn(), Math.max(0, ms));
    // Background wake-ups never keep a process alive on their own.
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  }

  async sync(): Promise<void> {
    const sent = Date.now();
    const { rows } = await this.db.knex.raw('select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms') as { rows: { ms: number | string }[] };
    const received = Date.now();
    if (received - sent > MAX_SYNC_RTT_MS) return;
    // The database read its clock somewhere in the round trip: the middle is the best guess, off
    // by at most half the trip. An offset within that is taken as none, so processes on one host
    // (one clock) agree exactly and work one of them makes due now is due for the others at once.
    const offset = Number(rows[0].ms) - (sent + received) / 2;
    this.offsetMs = Math.abs(offset) <= (received - sent) / 2 + 1 ? 0 : Math.round(offset);
  }
}
