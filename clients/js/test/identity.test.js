import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Chatkeep,
  Forbidden,
  NotFound,
  Unauthorized,
  VISITOR_STORAGE_KEY,
  forgetVisitorId,
  isVisitorId,
  uuid4,
  visitorId,
} from "../src/chatkeep.js";
import { account, baseUrl, keyClient, newUser, userToken, visitorClient } from "./helpers.js";

/** A Storage as localStorage is (getItem, setItem, removeItem). */
function memoryStorage() {
  const values = new Map();
  return {
    getItem: (key) => values.get(key) ?? null,
    setItem: (key, value) => values.set(key, String(value)),
    removeItem: (key) => values.delete(key),
  };
}

test("a visitor id is made once, kept in storage, and meets the service's rule", () => {
  const storage = memoryStorage();
  const id = visitorId({ storage });
  assert.ok(isVisitorId(id));
  assert.equal(storage.getItem(VISITOR_STORAGE_KEY), id);
  assert.equal(visitorId({ storage }), id);
  // An id the service would refuse is replaced.
  storage.setItem(VISITOR_STORAGE_KEY, "short");
  const replaced = visitorId({ storage });
  assert.notEqual(replaced, "short");
  assert.ok(isVisitorId(replaced));
  forgetVisitorId({ storage });
  assert.equal(storage.getItem(VISITOR_STORAGE_KEY), null);
});

test("without storage (Node has no localStorage) the id lives in memory for the page's life", () => {
  const first = visitorId();
  assert.equal(visitorId(), first);
  forgetVisitorId();
  assert.notEqual(visitorId(), first);
  const broken = { getItem: () => { throw new Error("SecurityError"); }, setItem: () => { throw new Error("SecurityError"); } };
  assert.ok(isVisitorId(visitorId({ storage: broken })));
  assert.equal(isVisitorId("a".repeat(15)), false);
  assert.equal(isVisitorId("a".repeat(16)), true);
  assert.equal(isVisitorId("has space in it!!"), false);
  assert.throws(() => new Chatkeep({ baseUrl, sessionId: "bad" }), TypeError);
});

test("a visitor sees only its own history; logging in claims it for the user", async () => {
  const visitor = new Chatkeep({ baseUrl, visitor: { storage: memoryStorage() } });
  assert.ok(isVisitorId(visitor.sessionId));
  const conversation = uuid4();
  await visitor.messages.append(conversation, [{ role: "user", content: "anonymous question" }]);
  assert.deepEqual((await visitor.conversations.list()).items.map((c) => c.id), [conversation]);
  await assert.rejects(visitorClient().conversations.get(conversation), NotFound);

  const user = newUser();
  const asUser = new Chatkeep({ baseUrl, token: userToken(user) });
  assert.equal(await asUser.users.claim(user, visitor.sessionId), 1);
  assert.equal(await asUser.users.claim(user, visitor.sessionId), 0);
  assert.equal((await asUser.conversations.get(conversation)).user_id, user);
  // The same client switches to the user's token, then back to the visitor id.
  visitor.setToken(userToken(user));
  assert.equal((await visitor.conversations.get(conversation)).id, conversation);
  visitor.setToken(null);
  await assert.rejects(visitor.conversations.get(conversation), NotFound);
});

test("a token may be a function, asked for every request", async () => {
  const user = newUser();
  let asked = 0;
  const client = new Chatkeep({ baseUrl, token: async () => (asked++, userToken(user)) });
  await client.conversations.create({ title: "mine" });
  await client.conversations.list();
  assert.equal(asked, 2);
});

test("a user cannot act for another user: Forbidden", async () => {
  const client = new Chatkeep({ baseUrl, token: userToken(newUser()) });
  const error = await client.conversations.create({ user_id: newUser() }).catch((caught) => caught);
  assert.ok(error instanceof Forbidden, String(error));
  assert.equal(error.status, 403);
});

test("auth.login exchanges an account's password for a token the client then uses", async () => {
  const client = new Chatkeep({ baseUrl });
  await assert.rejects(client.auth.token(account.username, "wrong password"), Unauthorized);
  const issued = await client.auth.login(account.username, account.password);
  assert.equal(issued.token_type, "Bearer");
  assert.ok(issued.expires_in > 0);
  const made = await client.conversations.create({ title: "from an account" });
  assert.equal(made.user_id, issued.user_id);
});

test("users.erase deletes a user's conversations", async () => {
  const ck = keyClient();
  const user = newUser();
  await ck.messages.append(uuid4(), [{ role: "user", content: "x" }], { userId: user });
  const erased = await ck.users.erase(user);
  assert.deepEqual(erased, { conversations: 1, messages: 1 });
});

test("no credentials at all are Unauthorized, with the problem's fields", async () => {
  const error = await new Chatkeep({ baseUrl }).conversations.list().catch((caught) => caught);
  assert.ok(error instanceof Unauthorized);
  assert.equal(error.status, 401);
  assert.ok(error.title);
  assert.ok(error.detail);
});
