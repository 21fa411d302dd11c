import assert from "node:assert/strict";
import { test } from "node:test";
import { Chatkeep, NotFound, Unauthorized, uuid4 } from "../src/chatkeep.js";
import { apiKey, baseUrl, keyClient, nextWithin, newUser, visitorClient } from "./helpers.js";

const ck = keyClient();

/** Waits until the stream's connection is open (so the next change is sent on it). */
function opened() {
  let resolve;
  const promise = new Promise((done) => (resolve = done));
  return { promise, onOpen: () => resolve() };
}

test("a conversation's stream carries its changes, in order, and ends when it is deleted", async () => {
  const conversation = uuid4();
  await ck.messages.append(conversation, [{ role: "user", content: "before" }]);
  const open = opened();
  const stream = ck.events.conversation(conversation, { onOpen: open.onOpen });
  await open.promise;
  const { items } = await ck.messages.append(conversation, [{ role: "user", content: "Hi" }, { role: "assistant", content: "" , status: "in_progress"}]);
  await ck.messages.appendContent(conversation, items[1].id, "Hello", { status: "complete" });
  await ck.conversations.update(conversation, { title: "Greetings" });
  const seen = [];
  let sawDeletion;
  const deletionSeen = new Promise((done) => (sawDeletion = done));
  const reading = (async () => {
    for await (const event of stream) {
      seen.push(event);
      if (event.type === "message.deleted") sawDeletion();
    }
  })();
  await ck.messages.delete(conversation, items[0].id);
  // The log goes with its conversation: an event not yet read when the conversation is deleted
  // is superseded by conversation.deleted, so the deletion waits for it to be seen.
  await deletionSeen;
  await ck.conversations.delete(conversation);
  await reading;
  assert.deepEqual(seen.map((event) => event.type), [
    "message.created",
    "message.created",
    "message.updated",
    "conversation.updated",
    "message.deleted",
    "conversation.deleted",
  ]);
  assert.equal(seen[0].data.content, "Hi");
  assert.equal(seen[2].data.content, "Hello");
  assert.equal(seen[3].data.title, "Greetings");
  assert.deepEqual(seen[5].data, { id: conversation });
  // The deletion carries no id of its own (nothing follows it to resume from).
  const ids = seen.slice(0, 5).map((event) => Number(event.id));
  assert.deepEqual(ids, ids.map((_, i) => ids[0] + i));
  assert.equal(stream.closed, true);
});

test("after a dropped connection the stream resumes after the last event: nothing missed or repeated", async () => {
  const conversation = uuid4();
  await ck.messages.append(conversation, [{ role: "user", content: "m0" }]);
  const sentIds = [];
  let connections = 0;
  // Every connection is cut after the first event it delivers, as a flaky network would.
  const cutting = keyClient({
    fetch: async (url, init) => {
      connections += 1;
      sentIds.push(init.headers["Last-Event-ID"]);
      const response = await fetch(url, init);
      if (!String(url).endsWith("/events")) return response;
      return new Response(cutAfterFirstEvent(response.body), response);
    },
  });
  const stream = cutting.events.conversation(conversation, { after: 0, initialRetryMs: 10 });
  for (let i = 1; i <= 3; i++) await ck.messages.append(conversation, [{ role: "user", content: `m${i}` }]);
  const contents = [];
  for (let i = 0; i < 4; i++) contents.push((await nextWithin(stream)).data.content);
  stream.close();
  assert.deepEqual(contents, ["m0", "m1", "m2", "m3"]);
  assert.ok(connections >= 4, `${connections} connections`);
  assert.deepEqual(sentIds.slice(0, 4), ["0", "1", "2", "3"]);
  assert.equal(stream.lastEventId, "4");
});

/** The body up to the end of its first event, then an error (the connection dropped). */
function cutAfterFirstEvent(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  return new ReadableStream({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) return controller.close();
      text += decoder.decode(value, { stream: true });
      const event = /(^|\n)event: [^]*?\n\n/.exec(text);
      if (!event) return;
      controller.enqueue(new TextEncoder().encode(text.slice(0, event.index + event[0].length)));
      await reader.cancel();
      controller.error(new TypeError("network error"));
    },
    cancel: () => reader.cancel(),
  });
}

test("a resume point the log never held gets a reset event first", async () => {
  const conversation = uuid4();
  await ck.messages.append(conversation, [{ role: "user", content: "x" }]);
  const stream = ck.events.conversation(conversation, { after: 999 });
  const first = await nextWithin(stream);
  stream.close();
  assert.equal(first.type, "reset");
  assert.ok(first.data.reason);
});

test("onEvent receives events without iterating", async () => {
  const conversation = uuid4();
  await ck.messages.append(conversation, [{ role: "user", content: "a" }, { role: "user", content: "b" }]);
  const got = [];
  await new Promise((resolve, reject) => {
    const stream = ck.events.conversation(conversation, {
      after: 0,
      onEvent: (event) => {
        got.push(event.data.content);
        if (got.length === 2) {
          stream.close();
          resolve();
        }
      },
      onError: reject,
    });
  });
  assert.deepEqual(got, ["a", "b"]);
});

test("a visitor follows its own conversation list, starting with ready", async () => {
  const visitor = visitorClient();
  const stream = visitor.events.owner();
  assert.equal((await nextWithin(stream)).type, "ready");
  const conversation = uuid4();
  await visitor.messages.append(conversation, [{ role: "user", content: "hello" }]);
  const created = await nextWithin(stream);
  stream.close();
  assert.equal(created.type, "conversation.created");
  assert.equal(created.data.id, conversation);
});

test("an API key names whose list to follow", async () => {
  const user = newUser();
  const stream = ck.events.owner({ userId: user });
  assert.equal((await nextWithin(stream)).type, "ready");
  const made = await ck.conversations.create({ user_id: user, title: "t" });
  const event = await nextWithin(stream);
  stream.close();
  assert.equal(event.type, "conversation.created");
  assert.equal(event.data.id, made.id);
});

test("a refused stream ends with its error instead of reconnecting", async () => {
  const stranger = visitorClient();
  const conversation = uuid4();
  await ck.messages.append(conversation, [{ role: "user", content: "private" }]);
  const hidden = stranger.events.conversation(conversation);
  await assert.rejects(nextWithin(hidden), NotFound);
  assert.equal(hidden.closed, true);
  const forged = new Chatkeep({ baseUrl, apiKey: `${apiKey}x` });
  await assert.rejects(nextWithin(forged.events.conversation(conversation)), Unauthorized);
});
