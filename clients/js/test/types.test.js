// The hand-written declarations cover every export of the module, and no more.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as chatkeep from "../src/chatkeep.js";

test("chatkeep.d.ts declares every value the module exports", async () => {
  const declarations = await readFile(new URL("../src/chatkeep.d.ts", import.meta.url), "utf8");
  const declared = new Set([...declarations.matchAll(/^export (?:class|function|const) (\w+)/gm)].map((match) => match[1]));
  assert.deepEqual([...declared].sort(), Object.keys(chatkeep).sort());
});
