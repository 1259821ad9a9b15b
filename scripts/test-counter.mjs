// A node:test reporter used by scripts/run-tests.mjs: counts the tests of one file and writes one JSON line at the
// end ({"passed":N,"failed":N,"skipped":N,"todo":N,"cancelled":N}). Suites (describe blocks) are not counted;
// a failing suite hook counts as one failure.
export default async function* counter(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, cancelled: 0, failures: [] };
  for await (const event of source) {
    const data = event.data ?? {};
    const details = data.details ?? {};
    if (event.type === "test:pass") {
      if (details.type === "suite") continue;
      if (data.skip) counts.skipped++;
      else if (data.todo) counts.todo++;
      else counts.passed++;
    } else if (event.type === "test:fail") {
      const cause = details.error?.cause ?? details.error;
      const cancelled = details.error?.failureType === "cancelledByParent";
      if (details.type === "suite" && (cancelled || details.error?.failureType === "subtestsFailed")) continue;
      if (cancelled) counts.cancelled++;
      else counts.failed++;
      counts.failures.push(`${data.name}: ${String(cause?.message ?? cause ?? "failed").split("\n")[0]}`);
    }
  }
  yield `${JSON.stringify(counts)}\n`;
}
