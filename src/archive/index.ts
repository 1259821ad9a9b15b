export {
  type Archive,
  type ArchiveKind,
  type ArchiveStatus,
  columnarEnabled,
  type DuckDBExportSource,
  type ExportFilter,
  type HistoryWrite,
  isDuckDBExportSource,
  type ParquetSource,
  type ProjectStatus,
  type QueryResult,
  type RunSyncState,
  type RunWrite,
  type StreamedRunWrite,
  type SyncLogEntry,
  type TextRowsFile,
} from "./archive.js";
export { ArchiveError, type ArchiveErrorCode, firstLine, redactUrl } from "./errors.js";
export { type ArchiveTarget, type OpenArchiveOptions, openArchive, parseArchiveTarget } from "./open.js";
export { ARCHIVE_TABLES, LATEST_SCHEMA_VERSION, MIGRATIONS } from "./schema.js";
export { kindsToMask, maskToKinds } from "./values.js";
export type * from "./viewer.js";
export { RUN_SORT_COLUMNS } from "./viewer.js";
