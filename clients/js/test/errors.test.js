// How answers become errors and retries. Statuses the test server cannot be made to send on
// demand (429, 503, a proxy's error page) come from a stand-in fetch answering as the service
// does; the rest come from the real server.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Chatkeep,
  ChatkeepError,
  ConnectionFailed,
  QuotaExceeded,
  RateLimited,
  ServerError,
  TooLarge,
  Unavailable,
  uuid4,
} from "../src/chatkeep.js";
import { baseUrl } from "./helpers.js";

function problem(status, title, { headers = {}, ...fields } = {}) {
  return new Response(JSON.stringify({ status, title, detail: `${title}, in detail`, ...fields }), {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

/** A client whose fetch answers from `answers` in turn, recording what was asked. */
function scripted(answers, retry = {}) {
  const asked = [];
  const client = new Chatkeep({
    baseUrl: "http://chatkeep.invalid",
    apiKey: "ck_x_y",
    retry: { backoffMs: 1, ...retry },
    fetch: async (url, init) => {
      asked.push({ url, init });
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  return { client, asked };
}

test("429 and 503 are retried after Retry-After, then succeed", async () => {
  const ok = new Response(JSON.stringify({ items: [], next_cursor: null }), { headers: { "content-type": "application/json" } });
  const { client, asked } = scripted([
    problem(429, "Too many requests", { headers: { "retry-after": "0" } }),
    problem(503, "Service unavailable", { headers: { "retry-after": "0" } }),
    ok,
  ]);
  assert.deepEqual(await client.conversations.list(), { items: [], next_cursor: null });
  assert.equal(asked.length, 3);
  assert.equal(asked[2].init.headers.Authorization, "Bearer ck_x_y");
});

test("retries spent, or a Retry-After too long to wait: RateLimited / Unavailable with retryAfter", async () => {
  const spent = scripted([1, 2, 3].map(() => problem(429, "Too many requests", { headers: { "retry-after": "0" } })));
  const limited = await spent.client.conversations.list().catch((error) => error);
  assert.ok(limited instanceof RateLimited);
  assert.equal(limited.retryAfter, 0);
  assert.equal(spent.asked.length, 3);
  const long = scripted([problem(503, "Service unavailable", { headers: { "retry-after": "120" } })]);
  const unavailable = await long.client.conversations.list().catch((error) => error);
  assert.ok(unavailable instanceof Unavailable && unavailable instanceof ServerError);
  assert.equal(unavailable.retryAfter, 120);
  assert.equal(long.asked.length, 1);
});

test("a quota's 413 is QuotaExceeded; any other 413 TooLarge", async () => {
  const { client } = scripted([
    problem(413, "Quota exceeded", { field: "messages" }),
    problem(413, "Request entity too large", { field: "messages[0].content" }),
  ]);
  const quota = await client.messages.append(uuid4(), [{ role: "user", content: "x" }]).catch((error) => error);
  assert.ok(quota instanceof QuotaExceeded && quota instanceof TooLarge);
  const large = await client.messages.append(uuid4(), [{ role: "user", content: "x" }]).catch((error) => error);
  assert.ok(large instanceof TooLarge && !(large instanceof QuotaExceeded));
  assert.equal(large.field, "messages[0].content");
});

test("an error page that is not a problem document still becomes a ChatkeepError", async () => {
  const { client } = scripted([new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" })]);
  const error = await client.conversations.get(uuid4()).catch((caught) => caught);
  assert.ok(error instanceof ServerError);
  assert.equal(error.status, 502);
  assert.equal(error.title, "Bad Gateway");
  assert.match(error.detail, /Bad gateway/);
});

test("a lost answer to a conditional write is not sent again", async () => {
  const { client, asked } = scripted([new TypeError("connection reset")]);
  const error = await client.conversations.update(uuid4(), { title: "t" }, { ifMatch: 3 }).catch((caught) => caught);
  assert.ok(error instanceof ConnectionFailed);
  assert.equal(asked.length, 1);
  assert.equal(asked[0].init.headers["If-Match"], '"3"');
});

test("a delete whose first answer was lost and that then finds nothing is done", async () => {
  const { client, asked } = scripted([new TypeError("connection reset"), problem(404, "Not found")]);
  await client.conversations.delete(uuid4());
  assert.equal(asked.length, 2);
});

test("no server listening: ConnectionFailed after the retries", async () => {
  const client = new Chatkeep({ baseUrl: "http://127.0.0.1:9", apiKey: "ck_x_y", retry: { backoffMs: 1 } });
  const error = await client.conversations.list().catch((caught) => caught);
  assert.ok(error instanceof ConnectionFailed && error instanceof ChatkeepError);
  assert.equal(error.status, undefined);
});

test("the real server's 404 and 422 carry status, title, detail and field", async () => {
  const client = new Chatkeep({ baseUrl, apiKey: process.env.CHATKEEP_API_KEY });
  const invalid = await client.messages.append(uuid4(), [{ role: "User!", content: "x" }]).catch((error) => error);
  assert.equal(invalid.name, "InvalidInput");
  assert.equal(invalid.status, 422);
  assert.equal(invalid.field, "messages[0].role");
  assert.match(invalid.message, /^422 /);
});
