export { buildRunRecord, runState } from "./build.js";
export { findLogFiles, readHead } from "./discover.js";
export { ImportError, type ImportErrorCode } from "./errors.js";
export {
  type ImportEvent,
  type ImportOptions,
  type ImportPlan,
  type ImportResult,
  importPaths,
  planImport,
  type RunAction,
  readRun,
} from "./import.js";
export { BLOCK_SIZE, chunkCrc, type LogRecord, type LogWarning, readLogFile } from "./log-reader.js";
export { RunLog } from "./run-log.js";
