import { UserError } from '../errors.js';

/** 9999-12-31T23:59:59Z: the last time RFC 3339 can write (and far within what a Date or a tar header holds). */
const MAX_SOURCE_DATE_EPOCH = 253402300799;

/** A SOURCE_DATE_EPOCH must be a time every output can write; `what` says where it came from. */
export function checkSourceDateEpoch(epochSeconds: number, what = 'SOURCE_DATE_EPOCH'): number {
  if (!Number.isSafeInteger(epochSeconds) || epochSeconds < 0 || epochSeconds > MAX_SOURCE_DATE_EPOCH) {
    throw new UserError(`${what} ${epochSeconds} is not a whole number of seconds between 1970 and 9999`);
  }
  return epochSeconds;
}

/** RFC 3339 in UTC without fractional seconds (`2024-01-01T00:00:00Z`), as image configs and SBOMs write it. */
export function rfc3339(epochSeconds: number): string {
  return new Date(checkSourceDateEpoch(epochSeconds) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}
