import { UserError } from '../errors.js';

/** RFC 3339 in UTC without fractional seconds (`2024-01-01T00:00:00Z`), as image configs and SBOMs write it. */
export function rfc3339(epochSeconds: number): string {
  if (!Number.isSafeInteger(epochSeconds) || epochSeconds < 0 || epochSeconds > 253402300799) {
    throw new UserError(`SOURCE_DATE_EPOCH ${epochSeconds} is not a whole number of seconds between 1970 and 9999`);
  }
  return new Date(epochSeconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}
