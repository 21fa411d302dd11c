import assert from "node:assert/strict";
import { test } from "node:test";
import { Conflict, ext, uuid4 } from "../src/chatkeep.js";
import { keyClient, newUser } from "./helpers.js";

const ck = keyClient();

test("append creates the conversation and answers the stored messages and the version", async () => {
  const conversation = uuid4();
  const user = newUser();
  const appended = await ck.messages.append(
    conversation,
    [
      { role: "user", content: "Hi!" },
      { role: "assistant", content: "Hello.", metadata: { model: "x" } },
    ],
    { userId: user, conversation: { metadata: { step: 1 } } },
  );
  assert.deepEqual(appended.items.map((m) => [m.seq, m.role, m.content]), [
    [1, "user", "Hi!"],
    [2, "assistant", "Hello."],
  ]);
  const stored = await ck.conversations.get(conversation);
  assert.equal(stored.user_id, user);
  assert.deepEqual(stored.metadata, { step: 1 });
  assert.equal(appended.version, stored.version);
});

test("the ids the client assigns make a repeated append store nothing twice", async () => {
  const conversation = uuid4();
  const message = { id: uuid4(), role: "user", content: "once" };
  const first = await ck.messages.append(conversation, [message]);
  const again = await ck.messages.append(conversation, [message]);
  assert.deepEqual(again.items, first.items);
  assert.equal((await ck.messages.list(conversation)).items.length, 1);
  // Every message sent without an id got one of its own.
  const [withoutId] = (await ck.messages.append(conversation, [{ role: "user", content: "x" }])).items;
  assert.match(withoutId.id, /^[0-9a-f-]{36}$/);
  const clash = await ck.messages.append(conversation, [{ ...message, content: "other" }]).catch((error) => error);
  assert.ok(clash instanceof Conflict, String(clash));
});

test("a retry after a lost answer stores the batch once", async () => {
  const conversation = uuid4();
  let calls = 0;
  // The first answer is lost after the service stored the batch: the client sends it again.
  const flaky = keyClient({
    retry: { backoffMs: 1 },
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      calls += 1;
      if (calls === 1 && init.method === "POST") throw new TypeError("connection reset");
      return response;
    },
  });
  const { items } = await flaky.messages.append(conversation, [{ role: "user", content: "lost answer" }]);
  assert.equal(calls, 2);
  assert.equal(items[0].seq, 1);
  assert.equal((await ck.messages.list(conversation)).items.length, 1);
});

test("list pages backward and forward; iterate walks every page", async () => {
  const conversation = uuid4();
  await ck.messages.append(conversation, Array.from({ length: 7 }, (_, i) => ({ role: "user", content: `m${i + 1}` })));
  const latest = await ck.messages.list(conversation, { limit: 3 });
  assert.deepEqual(latest.items.map((m) => m.seq), [5, 6, 7]);
  const older = await ck.messages.list(conversation, { limit: 3, before: latest.next_cursor });
  assert.deepEqual(older.items.map((m) => m.seq), [2, 3, 4]);
  const forward = await ck.messages.list(conversation, { limit: 3, after: 2, order: "desc" });
  assert.deepEqual(forward.items.map((m) => m.seq), [5, 4, 3]);
  const all = [];
  for await (const message of ck.messages.iterate(conversation, { pageSize: 2 })) all.push(message.seq);
  assert.deepEqual(all, [1, 2, 3, 4, 5, 6, 7]);
  const backward = [];
  for await (const message of ck.messages.iterate(conversation, { pageSize: 3, newestFirst: true })) backward.push(message.seq);
  assert.deepEqual(backward, [7, 6, 5, 4, 3, 2, 1]);
});

test("the context window fits max_tokens", async () => {
  const conversation = uuid4();
  await ck.messages.append(conversation, [
    { role: "system", content: "be brief", tokens: 2 },
    { role: "user", content: "a", tokens: 5 },
    { role: "assistant", content: "b", tokens: 5 },
  ]);
  const window = await ck.messages.list(conversation, { maxTokens: 8, includeSystem: true });
  assert.deepEqual(window.items.map((m) => m.content), ["be brief", "b"]);
  assert.equal(window.tokens, 7);
  assert.equal(window.truncated, true);
});

test("get, update, delete one message and clear by topic", async () => {
  const conversation = ext(`notes-${uuid4()}`);
  const { items } = await ck.messages.append(conversation, [
    { role: "user", content: "one", topic: "t1" },
    { role: "user", content: "two", topic: "t2" },
    { role: "user", content: "three", topic: "t2" },
  ]);
  assert.equal((await ck.messages.get(conversation, items[0].id)).content, "one");
  const edited = await ck.messages.update(conversation, items[0].id, { content: "uno", metadata: { edited: true } });
  assert.equal(edited.content, "uno");
  assert.deepEqual(edited.metadata, { edited: true });
  await ck.messages.delete(conversation, items[0].id);
  assert.equal(await ck.messages.clear(conversation, { topic: "t2" }), 2);
  assert.equal((await ck.messages.list(conversation)).items.length, 0);
});

test("a reply streamed into a message in progress, then completed", async () => {
  const conversation = uuid4();
  const reply = await ck.messages.startReply(conversation);
  assert.equal(reply.message.status, "in_progress");
  await reply.write("Once upon ");
  assert.equal((await ck.messages.get(conversation, reply.id)).content, "Once upon ");
  const done = await reply.complete("a time.");
  assert.equal(done.content, "Once upon a time.");
  assert.equal(done.status, "complete");
  const refused = await ck.messages.appendContent(conversation, reply.id, "more").catch((error) => error);
  assert.ok(refused instanceof Conflict);
  assert.equal(refused.field, "status");
});
