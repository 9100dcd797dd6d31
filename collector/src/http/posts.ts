/**
 * The API's POST routes: Grafana's querier (`querier.v1.QuerierService`,
 * the read scope, reading as the caller's tenant) and Pyroscope's ingest
 * (`/ingest` and `push.v1.PusherService/Push`, the write scope, storing as
 * the caller's tenant). The dispatcher (server.ts) checks the scope.
 */
import type { Ingester } from '../ingest/ingester';
import { connectRoutes } from './connect';
import { pusherService, pyroscopeIngestRoute } from './pyroscope-ingest';
import { querierService } from './querier-service';
import type { PostRoute } from './server';

export function postRoutes(ingester: Ingester, maxBodyBytes: number, onError: (path: string, err: unknown) => void): Record<string, PostRoute> {
  const posts: Record<string, PostRoute> = {};
  for (const [path, handler] of Object.entries(connectRoutes([querierService(), pusherService(ingester)], { maxBodyBytes, onError }))) {
    posts[path] = { access: path.startsWith('/push.v1.') ? 'write' : 'read', connect: true, handler };
  }
  posts['/ingest'] = { access: 'write', connect: false, handler: pyroscopeIngestRoute(ingester, maxBodyBytes) };
  return posts;
}
