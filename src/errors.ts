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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
