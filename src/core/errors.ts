/**
 * The few error classes shipclock throws on purpose. Each carries a stable machine `code`, an
 * HTTP status the API maps it to, and optionally the request `field` it is about. Anything
 * else that reaches the API's error handler is an internal error and is never shown verbatim.
 */
export class ShipclockError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request is well-formed but asks for something impossible (422) or is malformed (400). */
export class ValidationError extends ShipclockError {
  constructor(code: string, message: string, field?: string, status = 422) {
    super(status, code, message, field);
  }
}

export class NotFoundError extends ShipclockError {
  constructor(what: string, field?: string) {
    super(404, 'not_found', `${what} not found`, field);
  }
}

export class ConflictError extends ShipclockError {
  constructor(code: string, message: string, field?: string) {
    super(409, code, message, field);
  }
}

export class ForbiddenError extends ShipclockError {
  constructor(message = 'your role does not allow this', code = 'forbidden') {
    super(403, code, message);
  }
}

export class UnauthorizedError extends ShipclockError {
  constructor(message = 'missing or invalid bearer token') {
    super(401, 'unauthorized', message);
  }
}

/** Too many attempts (429); the API answers with `retry-after: retryAfterSeconds`. */
export class RateLimitedError extends ShipclockError {
  constructor(message: string, readonly retryAfterSeconds: number) {
    super(429, 'too_many_attempts', message);
  }
}
