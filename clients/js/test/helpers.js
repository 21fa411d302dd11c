// What the tests share: the server under test (from the environment the pytest runner sets,
// tests/integration/test_js_client.py) and clients of each kind of caller.
import { createHmac, randomUUID } from "node:crypto";
import { Chatkeep } from "../src/chatkeep.js";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest (tests/integration/test_js_client.py)`);
  return value;
}

export const baseUrl = required("CHATKEEP_URL");
export const apiKey = required("CHATKEEP_API_KEY");
const jwtSecret = required("CHATKEEP_JWT_SECRET");
export const account = { username: required("CHATKEEP_TEST_USERNAME"), password: required("CHATKEEP_TEST_PASSWORD") };

/** A client with an API key of every permission. */
export function keyClient(options = {}) {
  return new Chatkeep({ baseUrl, apiKey, ...options });
}

/** A user token as a login service signs it (HS256). */
export function userToken(sub, ttlSeconds = 300) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const head = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub, exp: Math.floor(Date.now() / 1000) + ttlSeconds })}`;
  return `${head}.${createHmac("sha256", jwtSecret).update(head).digest("base64url")}`;
}

/** A user id no other test uses. */
export function newUser(prefix = "js") {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A visitor's client, with a fresh session id. */
export function visitorClient() {
  return new Chatkeep({ baseUrl, sessionId: `visitor-${randomUUID()}` });
}

/** The next value an async iterator yields, or a failure after `ms` (generous: the machine
 * running the tests may be busy). */
export async function nextWithin(iterator, ms = 30000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms);
  });
  try {
    const { value, done } = await Promise.race([iterator.next(), timeout]);
    if (done) throw new Error("the stream ended");
    return value;
  } finally {
    clearTimeout(timer);
  }
}
