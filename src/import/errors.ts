/** The errors of `dr-wandb import`: one line each, with a stable code the CLI maps to an exit code. */

export type ImportErrorCode =
  /** The file is not a W&B log (no `:W&B` header): exit 2. */
  | "NOT_WANDB"
  /** A log format version this dr-wandb does not read: exit 2. */
  | "NEWER_VERSION"
  /** A PATH that does not exist or holds no `.wandb` file: exit 4. */
  | "NOT_FOUND"
  /** A run that cannot be placed (no entity, no run record): exit 2. */
  | "USAGE";

export class ImportError extends Error {
  override name = "ImportError";
  constructor(
    readonly code: ImportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
