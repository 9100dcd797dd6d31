/**
 * The gRPC status codes this agent produces or acts on, with the numbers the
 * gRPC spec fixes for them (https://grpc.github.io/grpc/core/md_doc_statuscodes.html;
 * identical to grpc-js's `status` enum, which a unit test checks). Defined
 * here so the agent never loads @grpc/grpc-js.
 */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * A non-gRPC HTTP response, as the spec maps it
 * (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md)
 * and grpc-js does: a proxy's 401/403 then means the same as the collector's.
 */
export function statusFromHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}
