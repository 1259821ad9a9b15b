import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isLoopbackHost, normaliseBaseUrl, parseNetrc, resolveConfig } from "./config.js";
import { WandbError } from "./errors.js";

const KEY = "local-0123456789abcdefghijklmnopqrstuvwxyzABCD";

describe("resolveConfig", () => {
  let root: string;
  let home: string;
  let cwd: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "drw-config-"));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function fresh(): void {
    const dir = mkdtempSync(join(root, "case-"));
    home = join(dir, "home");
    cwd = join(dir, "cwd");
    mkdirSync(home, { recursive: true });
    mkdirSync(cwd, { recursive: true });
  }

  test("explicit option wins over everything, default base URL", () => {
    fresh();
    writeFileSync(join(cwd, ".env"), "WANDB_API_KEY=from-dotenv-xxxxxxxxxxxxxxxx\n");
    const c = resolveConfig({ apiKey: KEY, env: { WANDB_API_KEY: "from-env-xxxxxxxxxxxxxxxxxxx" }, cwd, home });
    assert.equal(c.apiKey, KEY);
    assert.equal(c.apiKeySource, "option");
    assert.equal(c.baseUrl, "https://api.wandb.ai");
    assert.equal(c.baseUrlSource, "default");
  });

  test("the key is not enumerable: JSON and inspection never show it", () => {
    fresh();
    const c = resolveConfig({ apiKey: KEY, env: {}, cwd, home });
    assert.ok(!JSON.stringify(c).includes(KEY));
    assert.ok(!Object.keys(c).includes("apiKey"));
    assert.equal(c.apiKey, KEY);
  });

  test("WANDB_API_KEY, then .env, then netrc", () => {
    fresh();
    writeFileSync(join(cwd, ".env"), "# comment\nWANDB_API_KEY='dotenv-key-xxxxxxxxxxxxxxxxxx'\nOTHER=1\n");
    writeFileSync(
      join(home, ".netrc"),
      `machine api.wandb.ai\n  login user\n  password netrc-key-xxxxxxxxxxxxxxxxx\n`,
      {
        mode: 0o600,
      },
    );
    assert.equal(
      resolveConfig({ env: { WANDB_API_KEY: "env-key-xxxxxxxxxxxxxxxxxxx" }, cwd, home }).apiKeySource,
      "env",
    );
    const d = resolveConfig({ env: {}, cwd, home });
    assert.equal(d.apiKeySource, "dotenv");
    assert.equal(d.apiKey, "dotenv-key-xxxxxxxxxxxxxxxxxx");
    rmSync(join(cwd, ".env"));
    const n = resolveConfig({ env: {}, cwd, home });
    assert.equal(n.apiKeySource, "netrc");
    assert.equal(n.apiKey, "netrc-key-xxxxxxxxxxxxxxxxx");
    assert.deepEqual(n.warnings, []);
  });

  test("netrc machine is host[:port] of the base URL; $NETRC overrides; _netrc fallback", () => {
    fresh();
    writeFileSync(
      join(home, ".netrc"),
      [
        "machine api.wandb.ai login user password saas-key-xxxxxxxxxxxxxxxxxx",
        "machine localhost:8080",
        "  login user",
        "  password 'local-key-xxxxxxxxxxxxxxxxx'",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const c = resolveConfig({ baseUrl: "http://localhost:8080/", env: {}, cwd, home });
    assert.equal(c.baseUrl, "http://localhost:8080");
    assert.equal(c.apiKey, "local-key-xxxxxxxxxxxxxxxxx");
    const other = join(home, "other-netrc");
    writeFileSync(other, "machine api.wandb.ai password other-key-xxxxxxxxxxxxxxxxx\n", { mode: 0o600 });
    assert.equal(resolveConfig({ env: { NETRC: other }, cwd, home }).apiKey, "other-key-xxxxxxxxxxxxxxxxx");
    rmSync(join(home, ".netrc"));
    writeFileSync(join(home, "_netrc"), "machine api.wandb.ai password under-key-xxxxxxxxxxxxxxxxx\n", { mode: 0o600 });
    assert.equal(resolveConfig({ env: {}, cwd, home }).apiKey, "under-key-xxxxxxxxxxxxxxxxx");
  });

  test("a netrc readable by others gives a warning (without the key), not output", () => {
    fresh();
    const p = join(home, ".netrc");
    writeFileSync(p, "machine api.wandb.ai login user password loose-key-xxxxxxxxxxxxxxxxx\n");
    chmodSync(p, 0o644);
    const c = resolveConfig({ env: {}, cwd, home });
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0]!, /chmod 600/);
    assert.ok(!c.warnings[0]!.includes("loose-key"));
  });

  test("base URL: option > WANDB_BASE_URL > .env > settings file > default", () => {
    fresh();
    const cfgDir = join(home, ".config", "wandb");
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(join(cfgDir, "settings"), "[default]\nentity = someone\nbase_url = https://wandb.example.com/\n");
    const env = { WANDB_API_KEY: KEY };
    assert.equal(resolveConfig({ env, cwd, home }).baseUrl, "https://wandb.example.com");
    assert.equal(resolveConfig({ env, cwd, home }).baseUrlSource, "settings");
    const alt = join(root, "alt-config");
    mkdirSync(alt, { recursive: true });
    writeFileSync(
      join(alt, "settings"),
      "[other]\nbase_url = https://no.example\n[default]\nbase_url=https://alt.example\n",
    );
    assert.equal(resolveConfig({ env: { ...env, WANDB_CONFIG_DIR: alt }, cwd, home }).baseUrl, "https://alt.example");
    writeFileSync(join(cwd, ".env"), "WANDB_BASE_URL=https://dotenv.example\n");
    assert.equal(resolveConfig({ env, cwd, home }).baseUrl, "https://dotenv.example");
    assert.equal(
      resolveConfig({ env: { ...env, WANDB_BASE_URL: "https://env.example//" }, cwd, home }).baseUrl,
      "https://env.example",
    );
    assert.equal(
      resolveConfig({
        baseUrl: "https://opt.example",
        env: { ...env, WANDB_BASE_URL: "https://env.example" },
        cwd,
        home,
      }).baseUrl,
      "https://opt.example",
    );
  });

  test("a missing key says how to set one", () => {
    fresh();
    assert.throws(
      () => resolveConfig({ env: {}, cwd, home }),
      (e: unknown) =>
        e instanceof WandbError &&
        e.code === "CONFIG" &&
        /WANDB_API_KEY/.test(e.message) &&
        /wandb login/.test(e.message) &&
        /--api-key/.test(e.message),
    );
  });

  test("plain http to a non-loopback host is refused unless insecure", () => {
    fresh();
    assert.throws(
      () => resolveConfig({ apiKey: KEY, baseUrl: "http://wandb.example.com", env: {}, cwd, home }),
      (e: unknown) =>
        e instanceof WandbError && e.code === "CONFIG" && /plain http/.test(e.message) && !e.message.includes(KEY),
    );
    const c = resolveConfig({ apiKey: KEY, baseUrl: "http://wandb.example.com", insecure: true, env: {}, cwd, home });
    assert.equal(c.baseUrl, "http://wandb.example.com");
    assert.equal(
      resolveConfig({ apiKey: KEY, baseUrl: "http://127.0.0.1:9999", env: {}, cwd, home }).baseUrl,
      "http://127.0.0.1:9999",
    );
  });
});

describe("config helpers", () => {
  test("normaliseBaseUrl strips slashes and rejects junk", () => {
    assert.equal(normaliseBaseUrl("https://api.wandb.ai/"), "https://api.wandb.ai");
    assert.equal(normaliseBaseUrl("https://host.example/prefix/"), "https://host.example/prefix");
    assert.throws(() => normaliseBaseUrl("not a url"), WandbError);
    assert.throws(() => normaliseBaseUrl("ftp://x.example"), WandbError);
    assert.throws(() => normaliseBaseUrl("https://user:pw@x.example"), WandbError);
  });

  test("isLoopbackHost", () => {
    for (const h of ["localhost", "127.0.0.1", "127.1.2.3", "[::1]", "::1", "app.localhost"])
      assert.ok(isLoopbackHost(h), h);
    for (const h of ["example.com", "10.0.0.1", "128.0.0.1", "localhost.example.com"]) assert.ok(!isLoopbackHost(h), h);
  });

  test("parseNetrc: multi-line, one-line, default, macdef, quotes", () => {
    const entries = parseNetrc(
      [
        "# comment",
        "machine a.example login u password p1",
        "macdef init",
        "  cd /x",
        "  machine evil password bad",
        "",
        'machine "b.example"',
        "  login u2",
        "  password 'p w2'",
        "default login anon password p3",
      ].join("\n"),
    );
    assert.deepEqual(
      entries.map((e) => [e.machine, e.password]),
      [
        ["a.example", "p1"],
        ["b.example", "p w2"],
        [null, "p3"],
      ],
    );
  });
});
