/**
 * What changed between two alert states (alert.ts): the keys that became
 * flagged and the keys that cleared, as events for notifications
 * (alerts/webhook.ts). A flag and its clear share one id, stable across
 * collectors and re-evaluations: a hash of the service, the key and the
 * time it was first flagged, so receivers can de-duplicate.
 */
import { createHash } from 'node:crypto';
import type { AlertState, AlertSubject } from './alert';

export interface LeakEvent extends AlertSubject {
  event: 'flagged' | 'cleared';
  id: string;
  service: string;
  firstFlaggedAt: string;
  /** The evaluation that saw the change (ISO). */
  at: string;
}

export function eventId(service: string, key: string, firstFlaggedAt: string): string {
  return createHash('sha256').update(`${service}\0${key}\0${firstFlaggedAt}`).digest('hex').slice(0, 32);
}

export function transitions(service: string, prev: AlertState, next: AlertState, at: string): LeakEvent[] {
  const events: LeakEvent[] = [];
  for (const [key, e] of Object.entries(next.entries)) {
    if (!e.flagged || prev.entries[key]?.flagged || !e.subject || !e.firstFlaggedAt) continue;
    events.push({ ...e.subject, event: 'flagged', id: eventId(service, key, e.firstFlaggedAt), service, firstFlaggedAt: e.firstFlaggedAt, at });
  }
  for (const [key, e] of Object.entries(prev.entries)) {
    if (!e.flagged || next.entries[key]?.flagged || !e.subject || !e.firstFlaggedAt) continue;
    events.push({ ...e.subject, event: 'cleared', id: eventId(service, key, e.firstFlaggedAt), service, firstFlaggedAt: e.firstFlaggedAt, at });
  }
  return events;
}
