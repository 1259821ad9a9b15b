/**
 * @duckdb/node-api loaded on demand (the commands that never touch DuckDB do not pay for loading it). The package is
 * CommonJS: Node's ESM loader gives its exports by name, a bundler's ESM output (the test runner's bundle of the CLI)
 * only as the module's default export; this takes either.
 */
export type DuckModule = typeof import("@duckdb/node-api");

let loaded: Promise<DuckModule> | undefined;

export function loadDuckDB(): Promise<DuckModule> {
  loaded ??= import("@duckdb/node-api").then((m) => {
    const mod = m as DuckModule & { default?: DuckModule };
    return mod.DuckDBInstance !== undefined ? mod : (mod.default as DuckModule);
  });
  return loaded;
}
