import type { Clock, ClockTimer } from '../../core/workflows/engine/clock.ts';

interface Pending {
  at: number;
  seq: number;
  fn: () => unknown;
}

/** Timers a single advance may fire before it gives up (a timer re-arming itself at 0 ms would never end). */
const MAX_FIRED = 100_000;

/**
 * A clock that moves only when told: the workflow engine decides due-ness against it, so a test
 * advances it past a wait, a deadline or a back-off and runs exactly the work that came due,
 * without sleeping. It starts at the real time, so rows the database stamps itself (outbox
 * events, published_at) sit next to the engine's time.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: Pending[] = [];
  private seq = 0;

  constructor(start: Date | number = Date.now()) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  setTimer(ms: number, fn: () => unknown): ClockTimer {
    const timer: Pending = { at: this.current + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return { cancel: () => { this.timers = this.timers.filter((t) => t !== timer); } };
  }

  /** Timers armed and not yet fired. */
  get pending(): number {
    return this.timers.length;
  }

  /**
   * Moves time on by `ms`, firing the timers that come due in order, each at its own instant,
   * and waiting for the promise each returns (timers they arm fire too, if due by the end).
   * `stalled`: the process was frozen meanwhile (a blocked event loop, a suspended host), so the
   * timers due fire late, all at the end.
   */
  async advance(ms: number, options: { stalled?: boolean } = {}): Promise<void> {
    await this.advanceTo(this.current + ms, options);
  }

  async advanceTo(to: Date | number, options: { stalled?: boolean } = {}): Promise<void> {
    const target = typeof to === 'number' ? to : to.getTime();
    if (target < this.current) throw new Error(`a manual clock does not go back (from ${this.now().toISOString()} to ${new Date(target).toISOString()})`);
    if (options.stalled) this.current = target;
    for (let fired = 0; ; fired++) {
      if (fired === MAX_FIRED) throw new Error(`${MAX_FIRED} timers fired in one advance: one re-arms itself at 0 ms?`);
      const next = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.at);
      await next.fn();
    }
    this.current = target;
  }
}
