/**
 * The largest gRPC message an internal server or client accepts or sends:
 * 16 MiB. The edge takes request bodies up to 4 MiB (MAX_BODY_BYTES in
 * services/edge), so the largest legitimate internal message (a request
 * log with the request and its answer) fits with room; anything larger
 * ends RESOURCE_EXHAUSTED at the hop that sees it, on either side.
 */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
