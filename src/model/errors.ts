/**
 * The one shape of dr-wandb's own errors (ArchiveError, ExportError, ExitError): a stable `code` that callers switch
 * on, a one-line message, and an optional `cause`. Each subclass sets its own `name` (the CLI maps errors by name
 * and code, so they survive duplicate copies of a module). WandbError has a richer shape of its own (src/wandb/).
 */
export class CodedError<C extends string | number> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
