/**
 * dr-wandb's own GraphQL documents. Operation names match the official SDK's where the request does the same job
 * (Runs, Run, RunHistoryKeys, HistoryPage, SampledHistoryPage, RunParquetHistory, RunFullHistory, RunFiles), so
 * server-side statistics read the same; the aliased multi-run document (RunsByName) and RunCount are ours.
 *
 * Every run-returning document selects the full run fields, so listing runs never needs a request per run.
 */

/** The full run selection (the SDK's RunFragment minus nothing we decode). */
export const RUN_FIELDS = `fragment RunFields on Run {
  id
  name
  displayName
  state
  tags
  group
  jobType
  sweepName
  commit
  readOnly
  createdAt
  heartbeatAt
  description
  notes
  historyLineCount
  user { name username }
  config
  summaryMetrics
  systemMetrics
  historyKeys
}`;

export const VIEWER = `query Viewer {
  viewer { id entity username }
}`;

export const RUN_COUNT = `query RunCount($entity: String!, $project: String!, $filters: JSONString) {
  project(name: $project, entityName: $entity) {
    runCount(filters: $filters)
  }
}`;

/** One page of runs with the full run fields; paging by the last edge's cursor. */
export const RUNS = `query Runs($entity: String!, $project: String!, $cursor: String, $perPage: Int = 50, $order: String, $filters: JSONString) {
  project(name: $project, entityName: $entity) {
    runCount(filters: $filters)
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {
      edges {
        node { ...RunFields }
        cursor
      }
      pageInfo { endCursor hasNextPage }
    }
  }
}
${RUN_FIELDS}`;

/**
 * Runs with some of each run's files selected by name inside the run node (not an SDK shape: the SDK asks RunFiles
 * per run). The file selection is RunFiles' own; `directUrl` is the signed storage URL, fetched with no credentials.
 */
export const RUNS_WITH_FILES = `query Runs($entity: String!, $project: String!, $cursor: String, $perPage: Int = 50, $order: String, $filters: JSONString, $fileNames: [String]) {
  project(name: $project, entityName: $entity) {
    runCount(filters: $filters)
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {
      edges {
        node {
          ...RunFields
          files(names: $fileNames, first: 50) {
            edges {
              node { id name url(upload: false) directUrl sizeBytes mimetype updatedAt md5 }
            }
          }
        }
        cursor
      }
      pageInfo { endCursor hasNextPage }
    }
  }
}
${RUN_FIELDS}`;

export const RUN = `query Run($entity: String!, $project: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { ...RunFields }
  }
}
${RUN_FIELDS}`;

/** Several runs by name in one request: `r0: run(name: $n0) { ... }` and so on (not an SDK shape). */
export function runsByName(count: number): string {
  const vars: string[] = [];
  const fields: string[] = [];
  for (let i = 0; i < count; i++) {
    vars.push(`$n${i}: String!`);
    fields.push(`    r${i}: run(name: $n${i}) { ...RunFields }`);
  }
  return `query RunsByName($entity: String!, $project: String!, ${vars.join(", ")}) {
  project(name: $project, entityName: $entity) {
${fields.join("\n")}
  }
}
${RUN_FIELDS}`;
}

export const RUN_HISTORY_KEYS = `query RunHistoryKeys($entity: String!, $project: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { historyKeys }
  }
}`;

/** Full rows of steps minStep <= step < maxStep (maxStep exclusive); rows are JSON strings. */
export const HISTORY_PAGE = `query HistoryPage($entity: String!, $project: String!, $run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize)
    }
  }
}`;

/** Rows having every key of the spec {keys, minStep, maxStep (INCLUSIVE), samples}; rows are objects. */
export const SAMPLED_HISTORY_PAGE = `query SampledHistoryPage($entity: String!, $project: String!, $run: String!, $spec: JSONString!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      sampledHistory(specs: [$spec])
    }
  }
}`;

/** The SDK's run.history(keys=...) request (one spec, no step window). */
export const RUN_SAMPLED_HISTORY = `query RunSampledHistory($entity: String!, $project: String!, $name: String!, $specs: [JSONString!]!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { sampledHistory(specs: $specs) }
  }
}`;

export const RUN_PARQUET_HISTORY = `query RunParquetHistory($entity: String!, $project: String!, $runName: String!, $liveKeys: [String!]!) {
  project(name: $project, entityName: $entity) {
    run(name: $runName) {
      parquetHistory(liveKeys: $liveKeys) {
        parquetUrls
        liveData
      }
    }
  }
}`;

/** run.history(samples): down-sampled history rows as JSON strings. */
export const RUN_FULL_HISTORY = `query RunFullHistory($entity: String!, $project: String!, $name: String!, $samples: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { history(samples: $samples) }
  }
}`;

/** run.history(stream="system"): the system-metrics event stream (same operation name as the SDK uses). */
export const RUN_EVENTS = `query RunFullHistory($entity: String!, $project: String!, $name: String!, $samples: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { events(samples: $samples) }
  }
}`;

export const RUN_FILES = `query RunFiles($entity: String!, $project: String!, $name: String!, $fileCursor: String, $fileLimit: Int = 50, $fileNames: [String] = [], $pattern: String) {
  project(name: $project, entityName: $entity) {
    run(name: $name) {
      fileCount
      files(names: $fileNames, after: $fileCursor, first: $fileLimit, pattern: $pattern) {
        edges {
          node {
            id
            name
            url(upload: false)
            directUrl
            sizeBytes
            mimetype
            updatedAt
            md5
          }
          cursor
        }
        pageInfo { endCursor hasNextPage }
      }
    }
  }
}`;

/** The SDK's `api.projects(entity)` document (Projects, with its ProjectFragment); paged by the last edge's cursor. */
export const PROJECTS = `query Projects($entity: String, $cursor: String, $perPage: Int = 50) {
  models(entityName: $entity, after: $cursor, first: $perPage) {
    edges {
      node { ...ProjectFragment }
      cursor
    }
    pageInfo { endCursor hasNextPage }
  }
}
fragment ProjectFragment on Project {
  id
  name
  entityName
  createdAt
  isBenchmark
}`;

/** The SDK's `api.sweep(path)` document (GetSweep); `config` is a YAML or JSON string. */
/** The fields GetSweep selects (also in the aliased multi-sweep document). */
export const SWEEP_FIELDS =
  "id name displayName method state description bestLoss config createdAt updatedAt runCount runCountExpected";

export const SWEEP = `query GetSweep($entity: String, $project: String, $name: String!) {
  project(name: $project, entityName: $entity) {
    sweep(sweepName: $name) { ${SWEEP_FIELDS} }
  }
}`;

/** The SDK's fallback when a server rejects GetSweep's fields (older W&B servers): the legacy Sweep document. */
export const SWEEP_LEGACY = `query Sweep($project: String, $entity: String, $name: String!) {
  project(name: $project, entityName: $entity) {
    sweep(sweepName: $name) {
      id
      name
      state
      bestLoss
      config
    }
  }
}`;
