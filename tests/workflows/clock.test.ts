import { describe, expect, it } from 'vitest';
import type { Database } from '../../core/db/database.ts';
import { DatabaseClock, every } from '../../core/workflows/engine/clock.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/** A database whose clock reads `skewMs` ahead of this host's, answering after `delayMs`. */
const skewedDatabase = (skew: { ms: number; delayMs?: number }): Database => ({
  knex: {
    raw: async () => {
      if (skew.delayMs) await new Promise((r) => setTimeout(r, skew.delayMs));
      return { rows: [{ ms: Date.now() + skew.ms }] };
    },
  },
}) as unknown as Database;

describe('the real clock', () => {
  it('takes the database\'s time, so hosts whose clocks differ agree on what is due', async () => {
    const clock = new DatabaseClock(skewedDatabase({ ms: 120_000 }));
    expect(Math.abs(clock.now().getTime() - Date.now())).toBeLessThan(50);
    await clock.sync();
    expect(clock.now().getTime() - Date.now()).toBeGreaterThan(119_900);
    expect(clock.now().getTime() - Date.now()).toBeLessThan(120_100);
  });

  it('takes an offset within the round trip\'s uncertainty as none, and a slow round trip as no news', async () => {
    const skew = { ms: 0 };
    const clock = new DatabaseClock(skewedDatabase(skew));
    await clock.sync();
    const a = clock.now().getTime();
    expect(a - Date.now()).toBeLessThanOrEqual(0);
    expect(a - Date.now()).toBeGreaterThan(-5);
    Object.assign(skew, { ms: 60_000, delayMs: 150 });
    await clock.sync();
    expect(Math.abs(clock.now().getTime() - Date.now())).toBeLessThan(50);
  });

  it('never goes back when a new offset is smaller', async () => {
    const skew = { ms: 10_000 };
    const clock = new DatabaseClock(skewedDatabase(skew));
    await clock.sync();
    const before = clock.now().getTime();
    skew.ms = 0;
    await clock.sync();
    expect(clock.now().getTime()).toBeGreaterThanOrEqual(before);
  });
});

describe('the manual clock', () => {
  it('fires due timers in order, each at its own instant, and waits for them', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const seen: string[] = [];
    clock.setTimer(2_000, async () => {
      await new Promise((r) => setImmediate(r));
      seen.push(`b@${clock.now().toISOString()}`);
    });
    clock.setTimer(1_000, () => {
      seen.push(`a@${clock.now().toISOString()}`);
      clock.setTimer(500, () => seen.push(`a2@${clock.now().toISOString()}`));
    });
    const late = clock.setTimer(2_500, () => seen.push('never'));
    late.cancel();
    await clock.advance(1_999);
    expect(seen).toEqual(['a@2030-01-01T00:00:01.000Z', 'a2@2030-01-01T00:00:01.500Z']);
    await clock.advance(1);
    expect(seen.at(-1)).toBe('b@2030-01-01T00:00:02.000Z');
    await clock.advance(10_000);
    expect(seen).toHaveLength(3);
    expect(clock.pending).toBe(0);
    await expect(clock.advanceTo(Date.UTC(2029, 0, 1))).rejects.toThrow(/does not go back/);
  });

  it('repeats with every() until cancelled; a stall fires the timers late, at the end', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const at: number[] = [];
    const timer = every(clock, 1_000, () => at.push(clock.now().getTime() - Date.UTC(2030, 0, 1)));
    await clock.advance(3_000);
    expect(at).toEqual([1_000, 2_000, 3_000]);
    await clock.advance(2_500, { stalled: true });
    expect(at).toEqual([1_000, 2_000, 3_000, 5_500]);
    timer.cancel();
    await clock.advance(5_000);
    expect(at).toHaveLength(4);
  });
});
