/**
 * The one field of a multipart/form-data body that Pyroscope's ingest API
 * needs (`profile`). The body is already read within its limit.
 */
import { HttpError } from './errors';

export function multipartField(body: Buffer, contentType: string, name: string): Buffer | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = boundary?.[1] ?? boundary?.[2];
  if (!b) throw new HttpError(400, 'multipart/form-data without a boundary');
  const delimiter = Buffer.from(`--${b}`);
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') return undefined; // the closing delimiter
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw new HttpError(400, 'multipart/form-data body is truncated');
    const part = body.subarray(start, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw new HttpError(400, 'multipart/form-data part without headers');
    const headers = part.subarray(0, headerEnd).toString('utf8');
    const field = /content-disposition:[^\r\n]*\bname="([^"]*)"/i.exec(headers)?.[1];
    if (field === name) {
      let end = part.length;
      if (part[end - 2] === 0x0d && part[end - 1] === 0x0a) end -= 2; // the CRLF before the next delimiter
      return part.subarray(headerEnd + 4, end);
    }
    at = next;
  }
  return undefined;
}
