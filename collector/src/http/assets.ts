/**
 * The web UI's files (collector/ui/dist, built by collector/ui/build.mjs),
 * served at `/` and `/assets/<name>`. Only the files found in that one
 * directory when the collector starts are served, from memory, by exact
 * name: no path from a request ever reaches the file system, so there is no
 * traversal to guard against. The build names every file but index.html
 * after its content hash, so those are cached for good and index.html is
 * revalidated.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as http from 'node:http';

/** Where the build puts the UI, relative to this file's compiled place (collector/dist/http). */
export const UI_DIST = path.resolve(__dirname, '../../ui/dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

/** Scripts, styles and data from this origin only: the page never reaches the internet. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  type: string;
  cache: string;
}

export class StaticAssets {
  private readonly files = new Map<string, Asset>();

  /** Largest file loaded; the build's output is well under it. */
  static readonly MAX_FILE_BYTES = 16 << 20;

  constructor(readonly dir: string = UI_DIST) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return; // not built: available() says so
    }
    for (const name of names) {
      const type = TYPES[path.extname(name)];
      const file = path.join(dir, name);
      const stat = fs.statSync(file);
      if (!type || !stat.isFile() || stat.size > StaticAssets.MAX_FILE_BYTES) continue;
      const cache = name === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable';
      this.files.set(name, { body: fs.readFileSync(file), type, cache });
    }
  }

  available(): boolean {
    return this.files.has('index.html');
  }

  /** The asset for a request path (`/` or `/assets/<name>`), or undefined. */
  lookup(pathname: string): Asset | undefined {
    if (pathname === '/' || pathname === '/index.html') return this.files.get('index.html');
    if (!pathname.startsWith('/assets/')) return undefined;
    const name = pathname.slice('/assets/'.length);
    return name === 'index.html' ? undefined : this.files.get(name);
  }

  send(asset: Asset, res: http.ServerResponse): void {
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': asset.body.length,
      'cache-control': asset.cache,
      'x-content-type-options': 'nosniff',
      ...(asset.type.startsWith('text/html') ? { 'content-security-policy': CSP, 'referrer-policy': 'no-referrer' } : {}),
    });
    res.end(asset.body);
  }
}
