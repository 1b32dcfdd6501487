// Errors the inference server answers with: an HTTP status, a CamelCase reason and a message that names the
// request field at fault, as {success: false, error: {code, reason, message}}.

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** A request the model cannot take; the message starts with the field, e.g. "obs: expected shape (N, 4), got (N, 3)". */
export function badRequest(field: string, message: string): HttpError {
  return new HttpError(400, 'BadRequest', `${field}: ${message}`);
}

export function errorBody(status: number, reason: string, message: string): { success: false; error: { code: number; reason: string; message: string } } {
  return { success: false, error: { code: status, reason, message } };
}
