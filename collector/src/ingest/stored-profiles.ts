/**
 * "Was this profile stored before?" for retries, asked of the store once
 * per batch of concurrent ingests instead of once per profile: at 100
 * profiles/s a query each was 100 engine round trips a second competing
 * with the inserts for the same engine.
 */
import type { Store } from '../store/clickhouse';

interface Question {
  key: string;
  service: string;
  instance: string;
  profileId: string;
  resolve: (stored: boolean) => void;
  reject: (err: unknown) => void;
}

export class StoredProfiles {
  private waiting: Question[] = [];
  /** Queries made, for tests and introspection. */
  queries = 0;

  constructor(private readonly store: Store) {}

  has(service: string, instance: string, profileId: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      // Questions asked in the same turn of the event loop (one gRPC read
      // delivers several requests) share one query.
      if (this.waiting.length === 0) setImmediate(() => void this.ask());
      this.waiting.push({ key: keyOf(service, instance, profileId), service, instance, profileId, resolve, reject });
    });
  }

  private async ask(): Promise<void> {
    const questions = this.waiting;
    this.waiting = [];
    this.queries++;
    try {
      // service and instance lead the sort key, so only those instances' rows are read.
      const rows = await this.store.query<{ service: string; instance: string; profile_id: string }>(
        `SELECT DISTINCT service, instance, profile_id FROM profiles
          WHERE service IN {services:Array(String)} AND instance IN {instances:Array(String)}
            AND profile_id IN {ids:Array(String)}`,
        {
          services: [...new Set(questions.map((q) => q.service))],
          instances: [...new Set(questions.map((q) => q.instance))],
          ids: questions.map((q) => q.profileId),
        },
      );
      const stored = new Set(rows.map((r) => keyOf(r.service, r.instance, r.profile_id)));
      for (const q of questions) q.resolve(stored.has(q.key));
    } catch (err) {
      for (const q of questions) q.reject(err);
    }
  }
}

function keyOf(service: string, instance: string, profileId: string): string {
  return `${service}\0${instance}\0${profileId}`;
}
