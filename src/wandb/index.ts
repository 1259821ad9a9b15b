/** The W&B protocol client: the only code in dr-wandb that speaks to W&B. */

export { duckToJson } from "../model/parquet-reader.js";
export {
  type Capabilities,
  capabilitiesFor,
  forgetCapabilities,
  isShapeRejection,
  SDK_PAGE_SIZE,
} from "./capabilities.js";
export { WandbClient, type WandbClientOptions, type WandbClientStats } from "./client.js";
export {
  type ApiKeySource,
  type BaseUrlSource,
  DEFAULT_BASE_URL,
  isLoopbackHost,
  normaliseBaseUrl,
  parseNetrc,
  type ResolveConfigOptions,
  readSettingsBaseUrl,
  resolveConfig,
  type WandbConfig,
} from "./config.js";
export { decodeRow, decodeRun, parseJsonText, unwrapConfig } from "./decode.js";
export { fileMd5 } from "./download.js";
export { isWandbError, NotFoundError, WandbError, type WandbErrorCode, type WandbErrorInit } from "./errors.js";
export { type GovernorOptions, type GovernorStats, type GovernorTicket, RateGovernor } from "./governor.js";
export { redact, registerSecret, unregisterSecret } from "./redact.js";
export {
  backoffDelay,
  classifyStatus,
  DEFAULT_RETRY,
  errorMessages,
  isTransientGraphqlMessage,
  NEVER_RETRY_STATUS,
  type RetryOptions,
  realSleep,
  type Sleep,
  serverWaitMs,
  withRetry,
} from "./retry.js";
export { DEFAULT_DOWNLOAD_TIMEOUT_MS, DEFAULT_GRAPHQL_TIMEOUT_MS, type TransportStats } from "./transport.js";
export type * from "./types.js";
