import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidInput, snippetText, uuid4 } from "../src/chatkeep.js";
import { keyClient, newUser } from "./helpers.js";

const ck = keyClient();

test("search finds a user's messages by word and by literal text, with a safe snippet", async () => {
  const user = newUser();
  const conversation = uuid4();
  await ck.messages.append(
    conversation,
    [
      { role: "user", content: "Invoice <ORD-2024-00042> is due & unpaid" },
      { role: "assistant", content: "The invoices are paid" },
      { role: "user", content: "nothing to see" },
    ],
    { userId: user },
  );
  const hits = await ck.search("invoice", { userId: user });
  assert.equal(hits.items.length, 2);
  const literal = await ck.search("ORD-2024-00042", { userId: user });
  assert.equal(literal.items.length, 1);
  assert.equal(literal.items[0].conversation_id, conversation);
  assert.match(literal.items[0].snippet, /&lt;<mark>/);
  assert.equal(snippetText(literal.items[0].snippet), "Invoice <ORD-2024-00042> is due & unpaid");
  const all = [];
  for await (const hit of ck.searchAll("invoice", { userId: user, pageSize: 1 })) all.push(hit.message_id);
  assert.equal(new Set(all).size, 2);
  const assistant = await ck.search("invoice", { userId: user, role: "assistant" });
  assert.deepEqual(assistant.items.map((hit) => hit.role), ["assistant"]);
});

test("an empty query is an InvalidInput naming q", async () => {
  const error = await ck.search("   ").catch((caught) => caught);
  assert.ok(error instanceof InvalidInput);
  assert.equal(error.field, "q");
});
