import type { Knex } from 'knex';
import { KubikiError, fieldError, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import { ZERO, dec } from '../util.ts';
import { lockRow, orderWriter, type Row } from './order-kit.ts';

export interface Stop { shipment: string; customer: string | null; address: string | null; status: 'pending' | 'delivered' | 'failed'; reason: string | null; at: string | null }

type Options = { actor: Principal; requestId?: string };
const TRIP = 'warehouse.trips';

/**
 * Delivery trips: shipments as stops in delivery order on a vehicle, loaded within its capacity,
 * sent out once every shipment is shipped, each stop reported delivered or failed.
 * planned → departed → completed (every stop reported), or cancelled while planned.
 */
export class Transport {
  constructor(private readonly ctx: PluginContext) {}

  /** Sets the stops (the shipments in delivery order): each shipment is put on this trip, those dropped are taken off. */
  async setStops(id: string, shipments: string[], options: Options): Promise<ApiRecord> {
    return this.ctx.transaction(async (trx) => {
      const trip = await this.planned(id, trx, 'stops are set');
      const rows = new Map<string, Row>((await this.ctx.table('warehouse_shipments', trx).whereIn('id', shipments).forUpdate()
        .select('id', 'number', 'status', 'trip', 'customer', 'deliveryAddress', 'weight', 'volume')).map((s: Row) => [String(s.id), s]));
      const otherTrips = [...new Set([...rows.values()].map((s) => s.trip).filter((t): t is string => !!t && t !== id))];
      const live = new Set((await this.ctx.table('warehouse_trips', trx).whereIn('id', otherTrips).whereNot({ status: 'cancelled' }).select('id')).map((t: Row) => String(t.id)));
      let weight = ZERO;
      let volume = ZERO;
      shipments.forEach((s, i) => {
        const row = rows.get(s);
        const field = `shipments.${i}`;
        if (!row) throw fieldError('reference-not-found', field, 'x-ref', `${field}: no warehouse.shipments record ${s}`);
        if (row.status === 'cancelled') throw this.ctx.error('trip-state', `${field}: shipment ${row.number} is cancelled`, { issues: [{ field, rule: 'not-cancelled', message: 'a cancelled shipment is not delivered' }] });
        if (row.trip && row.trip !== id && live.has(row.trip)) throw this.ctx.error('trip-state', `${field}: shipment ${row.number} is on another trip`, { issues: [{ field, rule: 'one-trip', message: 'take it off its trip first' }] });
        weight = weight.plus(dec(row.weight));
        volume = volume.plus(dec(row.volume));
      });
      const vehicle = await this.ctx.table('warehouse_vehicles', trx).where({ id: trip.vehicle }).first('capacityWeight', 'capacityVolume', 'plate');
      const capacityWeight = vehicle?.capacityWeight !== undefined && vehicle?.capacityWeight !== null ? dec(vehicle.capacityWeight) : undefined;
      const capacityVolume = vehicle?.capacityVolume !== undefined && vehicle?.capacityVolume !== null ? dec(vehicle.capacityVolume) : undefined;
      const load = { weight: weight.toFixed(3), volume: volume.toFixed(4) };
      if ((capacityWeight && weight.gt(capacityWeight)) || (capacityVolume && volume.gt(capacityVolume))) {
        throw this.ctx.error('over-capacity', `the shipments weigh ${load.weight} kg and take ${load.volume} m³; vehicle ${vehicle?.plate} carries ${capacityWeight?.toFixed(3) ?? '–'} kg, ${capacityVolume?.toFixed(4) ?? '–'} m³`, {
          issues: [{ field: 'shipments', rule: 'capacity', message: 'the load exceeds the vehicle\'s capacity' }],
          extra: { ...load, capacityWeight: capacityWeight?.toFixed(3) ?? null, capacityVolume: capacityVolume?.toFixed(4) ?? null },
        });
      }
      const writer = orderWriter(options.actor);
      const write = { actor: writer, trx, requestId: options.requestId, viaTransition: true };
      const dropped = (await this.ctx.table('warehouse_shipments', trx).where({ trip: id }).select('id')).map((s: Row) => String(s.id)).filter((s: string) => !shipments.includes(s));
      for (const s of dropped) await this.ctx.repository('warehouse.shipments').update(s, { trip: null }, write);
      for (const s of shipments) if (rows.get(s)!.trip !== id) await this.ctx.repository('warehouse.shipments').update(s, { trip: id }, write);
      const stops: Stop[] = shipments.map((s) => {
        const row = rows.get(s)!;
        return { shipment: s, customer: row.customer ?? null, address: row.deliveryAddress ?? null, status: 'pending', reason: null, at: null };
      });
      return this.ctx.repository(TRIP).update(id, { stops, ...load }, write);
    });
  }

  /** Sends a planned trip out: it has stops and every stop's shipment is shipped. */
  async depart(id: string, options: Options): Promise<ApiRecord> {
    return this.ctx.transaction(async (trx) => {
      const trip = await this.planned(id, trx, 'it departs');
      const stops = (trip.stops ?? []) as Stop[];
      if (stops.length === 0) throw this.ctx.error('trip-state', `trip ${trip.number} has no stops`, { issues: [{ field: 'stops', rule: 'minItems', message: 'set the stops first (PUT …/stops)' }] });
      const statuses = new Map<string, Row>((await this.ctx.table('warehouse_shipments', trx).whereIn('id', stops.map((s) => s.shipment)).select('id', 'status', 'number')).map((s: Row) => [String(s.id), s]));
      stops.forEach((s, i) => {
        const row = statuses.get(s.shipment);
        if (row?.status !== 'shipped') throw this.ctx.error('trip-state', `stops.${i}: shipment ${row?.number ?? s.shipment} is ${row?.status ?? 'gone'}, not shipped`, { issues: [{ field: `stops.${i}`, rule: 'shipped', message: 'every shipment is shipped before the trip departs' }] });
      });
      return this.ctx.repository(TRIP).update(id, { status: 'departed' }, { actor: orderWriter(options.actor), trx, requestId: options.requestId, viaTransition: true });
    });
  }

  /** Reports stop `n` (1-based) delivered or failed; the trip is completed when every stop is reported. */
  async report(id: string, n: number, outcome: { status: 'delivered' | 'failed'; reason?: string; at?: string }, options: Options): Promise<ApiRecord> {
    return this.ctx.transaction(async (trx) => {
      const trip = await lockRow(this.ctx, 'warehouse_trips', TRIP, id, trx);
      const stops = [...((trip.stops ?? []) as Stop[])];
      if (n < 1 || n > stops.length) throw new KubikiError('not-found', `trip ${trip.number} has ${stops.length} stop${stops.length === 1 ? '' : 's'}; there is no stop ${n}`, { extra: { entity: TRIP, id, stop: n } });
      if (trip.status !== 'departed') throw this.ctx.error('trip-state', `trip ${trip.number} is ${trip.status}; stops are reported once it departed`, { extra: { state: trip.status } });
      const stop = stops[n - 1];
      if (stop.status !== 'pending') throw this.ctx.error('trip-state', `stop ${n} of trip ${trip.number} was already reported ${stop.status}`, { issues: [{ field: 'status', rule: 'pending', message: `stop ${n} is ${stop.status}` }] });
      stops[n - 1] = { ...stop, status: outcome.status, reason: outcome.status === 'failed' ? outcome.reason ?? null : null, at: outcome.at ?? new Date().toISOString() };
      const done = stops.every((s) => s.status !== 'pending');
      return this.ctx.repository(TRIP).update(id, { stops, ...(done ? { status: 'completed' } : {}) }, { actor: orderWriter(options.actor), trx, requestId: options.requestId, viaTransition: true });
    });
  }

  /** Cancels a planned trip: its shipments are free for another. */
  async cancel(id: string, options: Options): Promise<ApiRecord> {
    return this.ctx.transaction(async (trx) => {
      await this.planned(id, trx, 'it is cancelled');
      const write = { actor: orderWriter(options.actor), trx, requestId: options.requestId, viaTransition: true };
      for (const s of await this.ctx.table('warehouse_shipments', trx).where({ trip: id }).select('id')) await this.ctx.repository('warehouse.shipments').update(String(s.id), { trip: null }, write);
      return this.ctx.repository(TRIP).update(id, { status: 'cancelled' }, write);
    });
  }

  /** The trip, locked, when it is still planned. */
  private async planned(id: string, trx: Knex.Transaction, what: string): Promise<Row> {
    const trip = await lockRow(this.ctx, 'warehouse_trips', TRIP, id, trx);
    if (trip.status !== 'planned') throw this.ctx.error('trip-state', `trip ${trip.number} is ${trip.status}; ${what} only while it is planned`, { extra: { state: trip.status } });
    return trip;
  }
}

/** A trip's computed fields on create: planned, empty. */
export const newTripFields = (): Row => ({ status: 'planned', stops: [], weight: '0.000', volume: '0.0000' });
