// The stock benchmark's workload: deterministic moves across products and locations that keep
// stock on hand non-negative, in date order per product (each client owns its products, so
// concurrent clients never post back-dated moves to each other's products).

export const SUPPLIERS = '019b0000-0000-7000-8000-000000000001';
export const CUSTOMERS = '019b0000-0000-7000-8000-000000000002';

export interface BenchMove {
  kind: 'receipt' | 'shipment' | 'transfer';
  date: string;
  product: string;
  quantity: string;
  fromLocation: string;
  toLocation: string;
  unitCost?: string;
}

const DAY = 86400_000;
const dateOf = (start: string, day: number) => new Date(Date.parse(`${start}T00:00:00Z`) + day * DAY).toISOString().slice(0, 10);

/**
 * `count` moves for `products` (owned by one client) over `days` days from `start`: receipts
 * (supplier → a location), transfers between locations and shipments (a location → customer),
 * each only taking what the simulated stock holds.
 */
export function generateMoves(options: { count: number; products: string[]; locations: string[]; start: string; days: number; seed: number }): BenchMove[] {
  let seed = options.seed;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)];
  const stock = new Map<string, number>();
  const key = (p: string, l: string) => `${p}|${l}`;
  const moves: BenchMove[] = [];
  for (let i = 0; i < options.count; i++) {
    const date = dateOf(options.start, Math.floor((i * options.days) / options.count));
    const product = pick(options.products);
    const quantity = 1 + Math.floor(rnd() * 5);
    const stocked = options.locations.filter((l) => (stock.get(key(product, l)) ?? 0) >= quantity);
    const from = stocked.length ? pick(stocked) : options.locations[0];
    const have = stock.get(key(product, from)) ?? 0;
    const r = rnd();
    if (r < 0.4 || have < quantity) {
      const to = pick(options.locations);
      stock.set(key(product, to), (stock.get(key(product, to)) ?? 0) + quantity);
      moves.push({ kind: 'receipt', date, product, quantity: String(quantity), fromLocation: SUPPLIERS, toLocation: to, unitCost: (1 + Math.floor(rnd() * 9999) / 100).toFixed(2) });
    } else if (r < 0.65) {
      const to = options.locations.find((l) => l !== from) ?? from;
      stock.set(key(product, from), have - quantity);
      stock.set(key(product, to), (stock.get(key(product, to)) ?? 0) + quantity);
      moves.push({ kind: 'transfer', date, product, quantity: String(quantity), fromLocation: from, toLocation: to });
    } else {
      stock.set(key(product, from), have - quantity);
      moves.push({ kind: 'shipment', date, product, quantity: String(quantity), fromLocation: from, toLocation: CUSTOMERS });
    }
  }
  return moves;
}

export const chunks = <T>(list: readonly T[], size: number): T[][] => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, i * size + size));

/** Runs `work` over `items`, `concurrency` at a time. */
export async function pool<T>(items: readonly T[], concurrency: number, work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i], i);
    }
  }));
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
