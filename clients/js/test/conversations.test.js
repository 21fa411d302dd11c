import assert from "node:assert/strict";
import { test } from "node:test";
import { Conflict, InvalidInput, NotFound, PreconditionFailed, ext, uuid4 } from "../src/chatkeep.js";
import { keyClient, newUser } from "./helpers.js";

const ck = keyClient();

test("create, get, update and delete a conversation", async () => {
  const user = newUser();
  const created = await ck.conversations.create({ title: "Billing", user_id: user, metadata: { form: "f1" } });
  assert.match(created.id, /^[0-9a-f-]{36}$/);
  assert.equal(created.user_id, user);
  const read = await ck.conversations.get(created.id);
  assert.deepEqual(read, created);
  const renamed = await ck.conversations.update(created.id, { title: "Invoices" });
  assert.equal(renamed.title, "Invoices");
  assert.deepEqual(renamed.metadata, { form: "f1" });
  const cleared = await ck.conversations.update(created.id, { title: null });
  assert.equal(cleared.title, null);
  await ck.conversations.delete(created.id);
  await assert.rejects(ck.conversations.get(created.id), NotFound);
});

test("a retried create with the same external id returns the stored conversation", async () => {
  const user = newUser();
  const first = await ck.conversations.create({ external_id: "session-1", user_id: user });
  const again = await ck.conversations.create({ external_id: "session-1", user_id: user });
  assert.equal(again.id, first.id);
  const byName = await ck.conversations.get(ext("session-1")).catch((error) => error);
  // Other tests' users may use the same external id: an API key then gets a 409.
  assert.ok(byName.id === first.id || byName instanceof Conflict);
});

test("patchMetadata merges, and ifMatch makes a write conditional on the version", async () => {
  const created = await ck.conversations.create({ user_id: newUser(), metadata: { a: 1, nested: { b: 2, c: 3 } } });
  const merged = await ck.conversations.patchMetadata(created.id, { nested: { c: null, d: 4 }, e: 5 }, { ifMatch: created.version });
  assert.deepEqual(merged.metadata, { a: 1, nested: { b: 2, d: 4 }, e: 5 });
  assert.ok(merged.version > created.version);
  const stale = await ck.conversations.patchMetadata(created.id, { a: 2 }, { ifMatch: created.version }).catch((error) => error);
  assert.ok(stale instanceof PreconditionFailed, String(stale));
  assert.equal(stale.status, 412);
  assert.equal(stale.field, "If-Match");
  await assert.rejects(ck.conversations.delete(created.id, { ifMatch: created.version }), PreconditionFailed);
  await ck.conversations.delete(created.id, { ifMatch: merged.version });
});

test("list filters by user and metadata, sorts, pages with cursors, and counts", async () => {
  const user = newUser();
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ids.push((await ck.conversations.create({ user_id: user, title: `c${i}`, metadata: { form: i % 2 ? "odd" : "even" } })).id);
  }
  const page = await ck.conversations.list({ userId: user, sort: "created_at", limit: 2 });
  assert.deepEqual(page.items.map((c) => c.id), [ids[4], ids[3]]);
  assert.ok(page.next_cursor);
  const next = await ck.conversations.list({ userId: user, sort: "created_at", limit: 2, cursor: page.next_cursor });
  assert.deepEqual(next.items.map((c) => c.id), [ids[2], ids[1]]);
  const all = [];
  for await (const conversation of ck.conversations.iterate({ userId: user, sort: "created_at", pageSize: 2 })) {
    all.push(conversation.id);
  }
  assert.deepEqual(all, [...ids].reverse());
  assert.equal(await ck.conversations.count({ userId: user }), 5);
  assert.equal(await ck.conversations.count({ userId: user, metadata: { form: "even" } }), 3);
  const odd = await ck.conversations.list({ userId: user, metadata: { form: "odd" } });
  assert.deepEqual(new Set(odd.items.map((c) => c.id)), new Set([ids[1], ids[3]]));
  const erased = await ck.conversations.deleteMany({ userId: user, metadata: { form: "odd" } });
  assert.equal(erased.conversations, 2);
  assert.equal(await ck.conversations.count({ userId: user }), 3);
});

test("a bad filter is an InvalidInput naming the parameter", async () => {
  const error = await ck.conversations.list({ sort: "title" }).catch((caught) => caught);
  assert.ok(error instanceof InvalidInput, String(error));
  assert.equal(error.status, 422);
  assert.equal(error.field, "sort");
  assert.ok(error.detail);
});

test("bulk delete without a filter needs confirmAll", async () => {
  const error = await ck.conversations.deleteMany().catch((caught) => caught);
  assert.ok(error instanceof InvalidInput);
  assert.equal(error.field, "confirm");
});

test("a conversation id that cannot be a path segment is refused before sending", () => {
  assert.throws(() => ck.conversations.get(ext("a/b")), TypeError);
  assert.ok(uuid4());
});
