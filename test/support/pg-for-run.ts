/**
 * One throwaway PostgreSQL server for a whole test run (scripts/run-tests.mjs): starts it as test/support/pg-test-server.ts
 * does, prints its URL on one line, and stops it when stdin closes (the runner ends). Test files then reach it
 * through DR_WANDB_TEST_PG_URL, each in databases of its own, instead of each starting a server.
 */
import { startTestPg } from "./pg-test-server.js";

const server = await startTestPg();
process.stdout.write(`${server.url}\n`);
process.stdin.resume();
process.stdin.on("end", () => {
  void server.stop().finally(() => process.exit(0));
});
