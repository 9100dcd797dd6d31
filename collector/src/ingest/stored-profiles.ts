/**
 * "Was this profile stored before?" for retries, asked of the store once
 * per batch of concurrent ingests instead of once per profile: at 100
 * profiles/s a query each was 100 engine round trips a second competing
 * with the inserts for the same engine.
 */
import { profileKeyString, type ProfileKey, type ProfileStore } from '../store/store';

interface Question extends ProfileKey {
  key: string;
  resolve: (stored: boolean) => void;
  reject: (err: unknown) => void;
}

export class StoredProfiles {
  private waiting: Question[] = [];
  private asking = false;
  /** Queries made, for tests and introspection. */
  queries = 0;

  constructor(private readonly store: ProfileStore) {}

  has(k: ProfileKey): Promise<boolean> {
    return new Promise((resolve, reject) => {
      // Questions asked in the same turn of the event loop (one gRPC read
      // delivers several requests) share one query, and so do all those
      // asked while a query is out: one at a time, each for everything
      // asked meanwhile, so that the more ingest is behind, the fewer
      // queries it makes per profile (at 100 profiles/s arriving one by one,
      // a query each per turn was ~1 query a profile).
      if (this.waiting.length === 0 && !this.asking) setImmediate(() => void this.ask());
      this.waiting.push({ ...k, key: profileKeyString(k), resolve, reject });
    });
  }

  private async ask(): Promise<void> {
    const questions = this.waiting;
    this.waiting = [];
    if (questions.length === 0) return;
    this.asking = true;
    this.queries++;
    try {
      const stored = await this.store.storedProfiles(questions);
      for (const q of questions) q.resolve(stored.has(q.key));
    } catch (err) {
      for (const q of questions) q.reject(err);
    } finally {
      this.asking = false;
      if (this.waiting.length > 0) setImmediate(() => void this.ask());
    }
  }
}
