/** Run files: RunFiles pages, downloads (resume, size/md5 checks), and small JSON files read the cheapest way. */
import { isJsonObject, type JsonObject, type JsonValue, parseWandbJson } from "../model/json.js";
import { SDK_PAGE_SIZE } from "./capabilities.js";
import type { ClientCore } from "./client-core.js";
import { decodeFile, requireRun } from "./decode.js";
import { downloadToBuffer, downloadToFile } from "./download.js";
import { WandbError } from "./errors.js";
import { RUN_FILES } from "./queries.js";
import type { WandbFile } from "./types.js";

export async function* listFiles(
  core: ClientCore,
  entity: string,
  project: string,
  name: string,
  options: { pattern?: string; names?: string[]; perPage?: number } = {},
): AsyncIterable<WandbFile[]> {
  const where = `${entity}/${project}/${name}`;
  if (options.pattern !== undefined && options.names && options.names.length > 0) {
    throw new WandbError({
      code: "BAD_REQUEST",
      operation: "RunFiles",
      run: where,
      reason: "pass either names or pattern, not both",
    });
  }
  const requested = Math.max(1, Math.floor(options.perPage ?? core.filesPerPage));
  let cursor: string | null = null;
  const listing: { size?: number } = {};
  for (;;) {
    const data = await core.withPageSize("files", requested, listing, (fileLimit) =>
      core.transport.graphql(
        "RunFiles",
        RUN_FILES,
        {
          entity,
          project,
          name,
          fileCursor: cursor,
          fileLimit,
          fileNames: options.names ?? [],
          pattern: options.pattern ?? null,
        },
        { run: where },
      ),
    );
    const run = requireRun(data, "RunFiles", where);
    const conn = isJsonObject(run.files) ? run.files : {};
    const edges = Array.isArray(conn.edges) ? conn.edges.filter(isJsonObject) : [];
    const files = edges
      .map((e) => e.node)
      .filter(isJsonObject)
      .map(decodeFile);
    const pageInfo = isJsonObject(conn.pageInfo) ? conn.pageInfo : {};
    if (files.length > 0) yield files;
    if (pageInfo.hasNextPage !== true || edges.length === 0) return;
    const last = edges[edges.length - 1]!;
    const next = typeof last.cursor === "string" ? last.cursor : pageInfo.endCursor;
    if (typeof next !== "string" || next === cursor) return;
    cursor = next;
  }
}

export async function downloadFile(
  core: ClientCore,
  file: WandbFile,
  dest: string,
  options: { resume?: boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const url = file.url ?? file.directUrl;
  if (!url) {
    throw new WandbError({
      code: "PROTOCOL",
      operation: "downloadFile",
      reason: `file ${file.name} has no download URL`,
    });
  }
  await downloadToFile(core.transport, url, dest, {
    operation: "downloadFile",
    run: file.name,
    size: Number.isFinite(file.sizeBytes) && file.sizeBytes >= 0 ? file.sizeBytes : undefined,
    md5: file.md5,
    resume: options.resume,
    signal: options.signal,
  });
}

/**
 * A small JSON run file, or null when the run has no such file. Unless `compat` is set, the file is first fetched
 * straight from its W&B URL ({base}/files/<entity>/<project>/<run>/<path>, the `url` RunFiles would return): one
 * request instead of two. A server where that URL scheme does not work is remembered and asked through RunFiles.
 * With `listed` (the file as the Runs page selected it, see ListRunsOptions.files) there is no API request at all:
 * its signed `directUrl` is read, and null means the run has no such file.
 */
export async function fetchJsonFile(
  core: ClientCore,
  entity: string,
  project: string,
  name: string,
  fileName: string,
  listed?: WandbFile | null,
): Promise<JsonObject | null> {
  const label = `${entity}/${project}/${name}/${fileName}`;
  // What the run listing said: no such file, or its signed storage URL (no credentials sent there, no API request).
  if (listed === null) return null;
  if (listed?.directUrl) {
    try {
      return parseJsonFile(
        await downloadToBuffer(core.transport, listed.directUrl, { operation: "downloadFile", run: label }),
        label,
      );
    } catch (e) {
      // An expired signature or a moved file: ask W&B below. Failures that retries did not cure are the caller's.
      if (!(e instanceof WandbError) || e.transient || !["AUTH", "NOT_FOUND", "BAD_REQUEST"].includes(e.code)) {
        throw e;
      }
    }
  }
  if (!core.compat && core.caps.directFiles !== false) {
    const url = `${core.baseUrl}/files/${[entity, project, name].map(encodeURIComponent).join("/")}/${fileName
      .split("/")
      .map(encodeURIComponent)
      .join("/")}`;
    let direct: JsonObject | undefined;
    try {
      direct = parseJsonFile(
        await downloadToBuffer(core.transport, url, { operation: "downloadFile", run: label }),
        label,
      );
    } catch (e) {
      // Not there, or not this URL scheme (an HTML page, a 404 of another layout): ask RunFiles below.
      if (!(e instanceof WandbError) || !["NOT_FOUND", "PROTOCOL", "BAD_REQUEST"].includes(e.code)) throw e;
      if (e.code === "NOT_FOUND" && core.caps.directFiles === true) return null;
    }
    if (direct) {
      if (core.caps.directFiles !== true) core.learn({ directFiles: true });
      return direct;
    }
    const listed = await fetchListedJsonFile(core, entity, project, name, fileName);
    if (listed !== null) core.learn({ directFiles: false });
    return listed;
  }
  return fetchListedJsonFile(core, entity, project, name, fileName);
}

/** fetchJsonFile the SDK's way: RunFiles(fileNames: [name]), then GET its url. */
async function fetchListedJsonFile(
  core: ClientCore,
  entity: string,
  project: string,
  name: string,
  fileName: string,
): Promise<JsonObject | null> {
  const label = `${entity}/${project}/${name}/${fileName}`;
  let file: WandbFile | undefined;
  for await (const page of listFiles(core, entity, project, name, { names: [fileName], perPage: SDK_PAGE_SIZE })) {
    file = page.find((f) => f.name === fileName);
    if (file) break;
  }
  const url = file?.url ?? file?.directUrl;
  if (!file || !url) return null;
  try {
    return parseJsonFile(await downloadToBuffer(core.transport, url, { operation: "downloadFile", run: label }), label);
  } catch (e) {
    if (e instanceof WandbError && e.code === "NOT_FOUND") return null;
    throw e;
  }
}

function parseJsonFile(buf: Buffer, label: string): JsonObject {
  let parsed: JsonValue;
  try {
    parsed = parseWandbJson(buf.toString("utf8"));
  } catch (e) {
    throw new WandbError({
      code: "PROTOCOL",
      operation: "fetchJsonFile",
      run: label,
      reason: `not valid JSON (${(e as Error).message})`,
      cause: e,
    });
  }
  if (!isJsonObject(parsed)) {
    throw new WandbError({ code: "PROTOCOL", operation: "fetchJsonFile", run: label, reason: "not a JSON object" });
  }
  return parsed;
}
