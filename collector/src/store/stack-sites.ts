/**
 * Stack id -> allocation site, decided when reading: the site rule
 * (model/site.ts) is a function of a stack's frames, so applying it here
 * rather than storing its answer at ingest means a better rule applies to
 * stacks stored before it.
 *
 * A stack id is a hash of the stack's frames, so a remembered site can never
 * be stale; frames are fetched only for ids not remembered. Bounded: past
 * `capacity` ids the oldest is forgotten (and counted), and is fetched again
 * when next needed.
 */
import { siteOf, type Frame, type Site } from '../model/site';
import { uint64Set, type Sql } from './sql';

export interface ServiceSites {
  /** Every stack id of the service (decimal). */
  ids: string[];
  /** The site of each, aligned with `ids`. */
  sites: Site[];
}

/** A `stacks` row's frames, as the reads select them. */
export interface StackFramesRow {
  functions: string[];
  files: string[];
  lines: number[];
}

export function framesOf(r: StackFramesRow): Frame[] {
  return r.functions.map((fn, i) => ({ function: fn, file: r.files[i] ?? '', line: Number(r.lines[i] ?? 0) }));
}

export class StackSites {
  private readonly byStack = new Map<string, Site>();
  /** One Site object per site id, so that remembered stacks share them. */
  private readonly bySiteId = new Map<string, Site>();
  /** Entries forgotten to stay within capacity. */
  evicted = 0;

  constructor(
    private readonly sql: Sql,
    readonly capacity: number,
  ) {}

  /**
   * The site of every stack `service` of `tenant` has stored. The cache is
   * shared by tenants: an id is a hash of the frames, so two tenants'
   * entries for one id are the same site, and only ids read from the
   * tenant's own rows are ever looked up.
   */
  async of(tenant: string, service: string): Promise<ServiceSites> {
    const [row] = await this.sql.rows<{ ids: string[] }>(
      `SELECT arrayMap(x -> toString(x), groupUniqArray(stack_id)) AS ids FROM stacks WHERE tenant = {tenant:String} AND service = {service:String}`,
      { tenant, service },
    );
    const ids = row?.ids ?? [];
    const sites: (Site | undefined)[] = ids.map((id) => this.byStack.get(id));
    const unknown = ids.filter((_, i) => sites[i] === undefined);
    if (unknown.length > 0) {
      const fetched = new Map<string, Site>();
      // With most ids unknown (a collector that just started), one read of the service's stacks beats a long IN list.
      const filter = unknown.length * 2 > ids.length ? '' : ` AND stack_id IN ${uint64Set(unknown)}`;
      const rows = await this.sql.rows<StackFramesRow & { id: string }>(
        `SELECT toString(stack_id) AS id, any(functions) AS functions, any(files) AS files, any(lines) AS lines
           FROM stacks WHERE tenant = {tenant:String} AND service = {service:String}${filter} GROUP BY stack_id`,
        { tenant, service },
        filter !== '',
      );
      for (const r of rows) fetched.set(r.id, this.remember(r.id, framesOf(r)));
      ids.forEach((id, i) => (sites[i] ??= fetched.get(id)));
    }
    // A stack listed but not fetched was stored in between (or its row is
    // still on its way to this replica); it counts from the next read on.
    const known = ids.flatMap((id, i) => (sites[i] ? [i] : []));
    return { ids: known.map((i) => ids[i]!), sites: known.map((i) => sites[i]!) };
  }

  get size(): number {
    return this.byStack.size;
  }

  private remember(stackId: string, frames: readonly Frame[]): Site {
    const computed = siteOf(frames);
    let site = this.bySiteId.get(computed.id);
    if (site === undefined) {
      site = computed;
      this.bySiteId.set(site.id, site);
      if (this.bySiteId.size > this.capacity) this.bySiteId.delete(this.bySiteId.keys().next().value!);
    }
    this.byStack.set(stackId, site);
    if (this.byStack.size > this.capacity) {
      this.byStack.delete(this.byStack.keys().next().value!);
      this.evicted++;
    }
    return site;
  }
}
