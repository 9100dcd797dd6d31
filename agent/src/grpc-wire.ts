/**
 * The few pieces of the gRPC-over-HTTP/2 wire protocol a unary client needs
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
 */

/** Length-Prefixed-Message header: 1 byte compressed flag + 4 bytes big-endian length. */
export const MESSAGE_HEADER_BYTES = 5;

/** Frames one uncompressed message (compressed flag 0). */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES + message.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  out.set(message, MESSAGE_HEADER_BYTES);
  return out;
}

/**
 * The one message of a unary response body, or an error string. We send no
 * grpc-accept-encoding, so a compliant server never compresses the reply.
 */
export function unframeSingleMessage(body: Buffer): { message: Buffer } | { error: string } {
  if (body.length < MESSAGE_HEADER_BYTES) return { error: `response body of ${body.length} bytes has no message` };
  const compressed = body.readUInt8(0);
  const length = body.readUInt32BE(1);
  if (compressed !== 0) return { error: 'response message is compressed, but no compression was offered' };
  if (body.length !== MESSAGE_HEADER_BYTES + length) {
    return { error: `response body is ${body.length} bytes, its message header says ${MESSAGE_HEADER_BYTES + length}` };
  }
  return { message: body.subarray(MESSAGE_HEADER_BYTES) };
}

/** The grpc-timeout value allows at most 8 digits per unit. */
const MAX_TIMEOUT_DIGITS_VALUE = 99_999_999;

/** `grpc-timeout` header value for a deadline `ms` from now (rounded up, at least 1 ms). */
export function encodeTimeout(ms: number): string {
  const v = Math.max(1, Math.ceil(ms));
  if (v <= MAX_TIMEOUT_DIGITS_VALUE) return `${v}m`;
  const s = Math.ceil(v / 1000);
  if (s <= MAX_TIMEOUT_DIGITS_VALUE) return `${s}S`;
  return `${Math.min(Math.ceil(s / 3600), MAX_TIMEOUT_DIGITS_VALUE)}H`;
}

/**
 * `grpc-message` is percent-encoded on the wire. A malformed escape is kept
 * as is rather than losing the whole message.
 */
export function decodeGrpcMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
