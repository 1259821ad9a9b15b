/**
 * JSON text in DuckDB SQL, exactly as the row path writes it (stringifyStrict, src/model/json.ts): a string as
 * JSON.stringify writes it, a double as String(n) with NaN/±Infinity as the strings "NaN"/"Infinity"/"-Infinity".
 * Used by the archive's columnar parquet ingest and its `history` view, and by the export.
 */

/** JSON.stringify(s) in SQL, for a non-NULL VARCHAR `x`. */
export function stringSql(x: string): string {
  const simple = `'"' || replace(replace(${x}, '\\', '\\\\'), '"', '\\"') || '"'`;
  let full = `replace(replace(${x}, '\\', '\\\\'), '"', '\\"')`;
  const named: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
  for (let c = 0; c < 32; c++) {
    const esc = named[c] ?? `\\u${c.toString(16).padStart(4, "0")}`;
    full = `replace(${full}, chr(${c}), '${esc}')`;
  }
  return `CASE WHEN regexp_matches(${x}, '[\\x00-\\x1f]') THEN '"' || ${full} || '"' ELSE ${simple} END`;
}

/**
 * String(n) (with strict NaN/±Infinity) in SQL for a DOUBLE `x` (NULL for NULL). yyjson (to_json) prints the same
 * shortest round-trip digits as JS for every non-integral value (they are below 2^52, so never in positive exponent
 * form), and faster than DuckDB's cast; integral values within 2^53 print as integers; larger integral values
 * (rare) take yyjson's text without its ".0" and with JS's exponent form ("1e+21").
 */
export function doubleSql(x: string): string {
  return (
    `CASE WHEN isfinite(${x}) AND ${x} <> trunc(${x}) THEN CAST(to_json(${x}) AS VARCHAR) ` +
    `WHEN isfinite(${x}) AND abs(${x}) <= 9007199254740992 THEN CAST(CAST(${x} AS BIGINT) AS VARCHAR) ` +
    `WHEN isfinite(${x}) THEN regexp_replace(regexp_replace(CAST(to_json(${x}) AS VARCHAR), '\\.0$', ''), 'e([0-9])', 'e+\\1') ` +
    `WHEN isnan(${x}) THEN '"NaN"' WHEN ${x} > 0 THEN '"Infinity"' WHEN ${x} < 0 THEN '"-Infinity"' END`
  );
}

/** A DOUBLE `d` as wandb-download's CSV spool writes numbers: String(n), bare NaN/Infinity/-Infinity (NULL for NULL). */
export function csvDoubleSql(d: string): string {
  return (
    `CASE WHEN ${d} IS NULL THEN NULL WHEN isnan(${d}) THEN 'NaN' WHEN ${d} = 'inf'::DOUBLE THEN 'Infinity' ` +
    `WHEN ${d} = '-inf'::DOUBLE THEN '-Infinity' ELSE ${doubleSql(d)} END`
  );
}
