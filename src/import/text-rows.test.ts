/**
 * canonicalKind: a `value_json` text it copies as it is must be exactly what the object path writes for it
 * (stringifyStrict(parseValueJson(text))), with kindOf's bit. Checked on seeded random number texts of every shape.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mulberry32 as prng } from "../../fake-wandb/random.js";
import { KIND_BITS, kindOf } from "../model/flatten.js";
import { stringifyStrict } from "../model/json.js";
import { canonicalKind } from "./value-text.js";
import { parseValueJson } from "./values.js";

function randomText(rand: () => number): string {
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join("");
  const sign = rand() < 0.3 ? "-" : "";
  switch (Math.floor(rand() * 6)) {
    case 0:
      return sign + digits(1 + Math.floor(rand() * 18)); // integers, leading zeros included
    case 1:
      return `${sign}${digits(1 + Math.floor(rand() * 8))}.${digits(1 + Math.floor(rand() * 12))}`;
    case 2:
      return `${sign}0.${"0".repeat(Math.floor(rand() * 9))}${digits(1 + Math.floor(rand() * 14))}`;
    case 3:
      return `${sign}${digits(1 + Math.floor(rand() * 3))}e${rand() < 0.5 ? "-" : "+"}${digits(2)}`;
    case 4:
      return String((rand() - 0.5) * 10 ** Math.floor(rand() * 30 - 10)); // JS's own texts
    default:
      return ["0", "-0", "0.0", "1.0", "1.", ".5", "-", "", "NaN", "true", "false", "null", "1.5.2", "0x1f"][
        Math.floor(rand() * 14)
      ]!;
  }
}

describe("canonicalKind", () => {
  it("copies a text only when it is what the object path writes, with the same kind", () => {
    const rand = prng(15);
    let copied = 0;
    for (let i = 0; i < 200_000; i++) {
      const s = randomText(rand);
      const bit = canonicalKind(s);
      if (bit === 0) continue;
      copied++;
      const v = parseValueJson(s);
      assert.equal(stringifyStrict(v), s, `text ${JSON.stringify(s)}`);
      assert.equal(bit, KIND_BITS[kindOf(v)], `kind of ${JSON.stringify(s)}`);
    }
    assert.ok(copied > 50_000, `copied ${copied}`);
  });

  it("refuses the texts JS writes otherwise", () => {
    for (const s of ["-0", "1.0", "2.50", "007", "0.0000001", "1e-05", "1234567890123456", "0.1234567890123456"]) {
      assert.equal(canonicalKind(s), 0, s);
    }
    assert.equal(canonicalKind("0.000001"), KIND_BITS.float);
    assert.equal(canonicalKind("-123456789012345"), KIND_BITS.int);
    assert.equal(canonicalKind("null"), KIND_BITS.null);
  });
});
