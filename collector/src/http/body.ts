/**
 * A request body, read whole within a byte limit (a client cannot make the
 * collector buffer more) and decompressed when `content-encoding: gzip`,
 * within the same limit.
 */
import type * as http from 'node:http';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { HttpError } from './errors';

const gunzip = promisify(zlib.gunzip);

export async function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw new HttpError(413, `request body is ${declared} bytes, over the ${maxBytes}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > maxBytes) {
      req.resume();
      throw new HttpError(413, `request body is over the ${maxBytes}-byte limit`);
    }
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks, length);
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding === 'identity') return body;
  if (encoding !== 'gzip') throw new HttpError(415, `content-encoding ${JSON.stringify(encoding)} is not supported; use gzip or none`);
  try {
    return await gunzip(body, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HttpError(413, `request body is over the ${maxBytes}-byte limit once decompressed`);
    }
    throw new HttpError(400, `request body is not valid gzip: ${(err as Error).message}`);
  }
}
