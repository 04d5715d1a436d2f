/**
 * Errors that are the user's or the input's fault: the CLI prints their message on one line and exits 2,
 * never a stack trace. Anything else escaping to the CLI is a bug and is reported as such.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

/** Bytes from outside did not match the digest or size that names them. */
export class DigestMismatchError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'DigestMismatchError';
  }
}

/**
 * A registry lost or invalidated an upload session mid-way (a chunk cut off in transit can leave it at an offset
 * that no Location we hold names any more): the blob can only be sent again from its first byte.
 */
export class UploadLostError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UploadLostError';
  }
}

/**
 * The document does not exist (HTTP 404, or no such file for a file: URL), as opposed to a failure to fetch it:
 * callers for which absence is an answer (an optional signature) tell the two apart by this class.
 */
export class NotFoundError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** Setup commands gave different results in two runs: the spec cannot be built reproducibly (publish: a failed check). */
export class NondeterministicError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'NondeterministicError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
