/**
 * fake-wandb's own GraphQL SDL, written from the public facts about the W&B wire format (see docs/fake-wandb.md).
 * The official schema is not public; this covers every read-path document the `wandb` SDK (0.26.x on `requests`,
 * 0.27+ through wandb-core, up to 0.31) sends, plus what dr-wandb needs. It is embedded as a string so that the
 * server finds it both from source (tsx) and from dist/ without any file lookup. It is the one copy of the SDL
 * (exported as SCHEMA_SDL; `console.log(SCHEMA_SDL)` prints it for tools that want a .graphql file).
 */
export const SCHEMA_SDL = `# fake-wandb schema: a reconstruction of the read side of the W&B GraphQL API (not the official SDL).

"ISO-8601 timestamp without a zone, e.g. 2023-11-05T17:46:35"
scalar DateTime
"64-bit integer; accepted as a number or a numeric string"
scalar Int64
"Any JSON value, sent as real JSON"
scalar JSON
"A JSON document encoded as a string"
scalar JSONString

type Query {
  viewer: User
  project(name: String, entityName: String): Project
  serverInfo: ServerInfo
  models(entityName: String, after: String, before: String, first: Int, last: Int): ProjectConnection
}

type ServerInfo {
  cliVersionInfo: JSON
  latestLocalVersionInfo: LocalVersionInfo
  features: [ServerFeature!]!
}

type LocalVersionInfo {
  outOfDate: Boolean!
  latestVersionString: String!
  versionOnThisInstanceString: String!
}

type ServerFeature {
  name: String!
  isEnabled: Boolean!
}

type User {
  id: ID!
  name: String!
  username: String
  email: String
  admin: Boolean
  flags: JSONString
  entity: String
  deletedAt: DateTime
  photoUrl: String
  apiKeys: ApiKeyConnection
  teams: EntityConnection
}

type ApiKey {
  id: ID!
  name: String!
  description: String
}

type ApiKeyConnection {
  edges: [ApiKeyEdge!]!
}

type ApiKeyEdge {
  node: ApiKey
  cursor: String!
}

type Entity {
  id: ID!
  name: String!
}

type EntityConnection {
  edges: [EntityEdge!]!
}

type EntityEdge {
  node: Entity
  cursor: String!
}

type PageInfo {
  startCursor: String
  endCursor: String
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
}

type Project {
  id: ID!
  internalId: ID!
  name: String!
  entityName: String!
  description: String
  createdAt: DateTime
  isBenchmark: Boolean
  readOnly: Boolean
  user: User
  runCount(filters: JSONString): Int!
  runs(filters: JSONString, order: String, after: String, before: String, first: Int, last: Int): RunConnection
  run(name: String!): Run
  sweep(sweepName: String!): Sweep
}

type ProjectConnection {
  edges: [ProjectEdge!]!
  pageInfo: PageInfo!
}

type ProjectEdge {
  node: Project
  cursor: String!
}

type RunConnection {
  totalCount: Int!
  edges: [RunEdge!]!
  pageInfo: PageInfo!
}

type RunEdge {
  node: Run!
  cursor: String!
}

type Run {
  "Storage id: base64 of Run:v1:<name>:<project>:<entity>"
  id: ID!
  "The short run id used in URLs"
  name: String!
  projectId: ID
  displayName: String
  state: String
  tags: [String!]
  group: String
  jobType: String
  sweepName: String
  sweep: Sweep
  commit: String
  host: String
  readOnly: Boolean
  createdAt: DateTime!
  heartbeatAt: DateTime
  updatedAt: DateTime
  description: String
  notes: String
  user: User
  project: Project
  "{key: {value, desc}, _wandb: {value: {...}}} as a JSON string"
  config: JSONString
  summaryMetrics: JSONString
  systemMetrics: JSONString
  "{lastStep, keys: {<key>: {typeCounts: [...]}}} as real JSON"
  historyKeys: JSON
  historyLineCount: Int
  eventsLineCount: Int
  logLineCount: Int
  fileCount: Int
  "Rows as JSON strings; minStep inclusive, maxStep exclusive; random down-sampling to about samples rows"
  history(minStep: Int64, maxStep: Int64, samples: Int): [JSONString!]!
  "System-metric rows as JSON strings"
  events(samples: Int): [JSONString!]!
  "One list of row objects per spec {keys, samples, minStep, maxStep (inclusive)}"
  sampledHistory(specs: [JSONString!]!): [JSON!]!
  parquetHistory(liveKeys: [String!]!): ParquetHistory!
  files(names: [String], pattern: String, after: String, before: String, first: Int, last: Int): FileConnection
}

type ParquetHistory {
  parquetUrls: [String!]!
  liveData: [JSON!]!
}

type Sweep {
  id: ID!
  name: String!
  displayName: String
  method: String
  state: String
  description: String
  bestLoss: Float
  config: String
  createdAt: DateTime
  updatedAt: DateTime
  runCount: Int
  runCountExpected: Int
}

type FileConnection {
  totalCount: Int!
  edges: [FileEdge!]!
  pageInfo: PageInfo!
}

type FileEdge {
  node: File
  cursor: String!
}

type File {
  id: ID!
  name: String!
  url(upload: Boolean): String
  directUrl: String!
  sizeBytes: Int64!
  mimetype: String
  updatedAt: DateTime
  md5: String
}
`;
