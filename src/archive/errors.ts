/** One-line, user-facing archive errors (never a stack trace, never a password). */

import { CodedError } from "../model/errors.js";

export type ArchiveErrorCode =
  | "BAD_URL"
  | "LOCKED"
  | "CORRUPT"
  | "CONNECT"
  | "AUTH"
  | "SCHEMA_NEWER"
  | "SCHEMA_OLDER"
  | "NOT_FOUND"
  | "CREATE_DB"
  | "WRITE"
  | "QUERY"
  | "EXPORT"
  | "CLOSED";

export class ArchiveError extends CodedError<ArchiveErrorCode> {
  override name = "ArchiveError";
}

/** The URL with any password replaced by "***" (and kept one line). Unparsable input is returned without userinfo. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

/** The first line of an error's message, with any occurrence of `secret` removed. */
export function firstLine(err: unknown, secret?: string): string {
  const raw = err instanceof Error ? err.message : String(err);
  let line = raw.split("\n")[0]!.trim();
  if (secret) line = line.split(secret).join("***");
  return line;
}
