/**
 * What changed between two alert states (alert.ts): the keys that became
 * flagged and the keys that cleared, as events for notifications
 * (alerts/webhook.ts). A flag and its clear share one id, stable across
 * collectors and re-evaluations: a hash of the tenant, the service, the key and the
 * time this flag began (AlertSubject.flaggedAt), so receivers can
 * de-duplicate, and a flag after a clear is a new id.
 */
import { createHash } from 'node:crypto';
import type { AlertState, AlertSubject } from './alert';

export interface LeakEvent extends AlertSubject {
  event: 'flagged' | 'cleared';
  id: string;
  /** The service's tenant ('' is the default tenant). */
  tenant: string;
  service: string;
  firstFlaggedAt: string;
  /** The evaluation that saw the change (ISO). */
  at: string;
}

export function eventId(tenant: string, service: string, key: string, flaggedAt: string): string {
  return createHash('sha256').update(`${tenant}\0${service}\0${key}\0${flaggedAt}`).digest('hex').slice(0, 32);
}

export function transitions(tenant: string, service: string, prev: AlertState, next: AlertState, at: string): LeakEvent[] {
  const events: LeakEvent[] = [];
  for (const [key, e] of Object.entries(next.entries)) {
    if (!e.flagged || prev.entries[key]?.flagged || !e.subject || !e.firstFlaggedAt) continue;
    events.push({ ...e.subject, event: 'flagged', id: eventId(tenant, service, key, e.subject.flaggedAt), tenant, service, firstFlaggedAt: e.firstFlaggedAt, at });
  }
  for (const [key, e] of Object.entries(prev.entries)) {
    if (!e.flagged || next.entries[key]?.flagged || !e.subject || !e.firstFlaggedAt) continue;
    events.push({ ...e.subject, event: 'cleared', id: eventId(tenant, service, key, e.subject.flaggedAt), tenant, service, firstFlaggedAt: e.firstFlaggedAt, at });
  }
  return events;
}
