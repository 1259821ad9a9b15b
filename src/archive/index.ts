export type {
  Archive,
  ArchiveKind,
  ArchiveStatus,
  HistoryWrite,
  ProjectStatus,
  QueryResult,
  RunSyncState,
  RunWrite,
  SyncLogEntry,
} from "./archive.js";
export { type DuckDBExportSource, type ExportFilter, isDuckDBExportSource, kindsToMask, maskToKinds } from "./base.js";
export { ArchiveError, type ArchiveErrorCode, redactUrl } from "./errors.js";
export { type ArchiveTarget, type OpenArchiveOptions, openArchive, parseArchiveTarget } from "./open.js";
export { ARCHIVE_TABLES, LATEST_SCHEMA_VERSION, MIGRATIONS } from "./schema.js";
export type * from "./viewer.js";
export { RUN_SORT_COLUMNS } from "./viewer.js";
