// The Server-Sent Events parser on its own (no server): line endings, multi-line data,
// comments, ids and retry, chunks split anywhere.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseEventStream } from "../src/chatkeep.js";

function streamOf(...chunks) {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
      controller.close();
    },
  });
}

async function parse(...chunks) {
  const state = {};
  const events = [];
  for await (const event of parseEventStream(streamOf(...chunks), state)) events.push(event);
  return { events, state };
}

test("events, comments, retry and ids as the service sends them", async () => {
  const { events, state } = await parse(
    "retry: 1000\n\n: heartbeat\n\nid: 7\nevent: message.created\ndata: {\"a\":1}\n\n",
    "event: conversation.deleted\ndata: {}\n\n",
  );
  assert.deepEqual(events, [
    { type: "message.created", data: '{"a":1}', id: "7" },
    { type: "conversation.deleted", data: "{}", id: "7" },
  ]);
  assert.equal(state.retry, 1000);
  assert.equal(state.lastEventId, "7");
});

test("CRLF and CR line endings, multi-line data, a field without a space, no event name", async () => {
  const { events } = await parse("data:one\r\ndata: two\r\n\r\nid:3\rdata: x\r\r");
  assert.deepEqual(events, [
    { type: "message", data: "one\ntwo", id: undefined },
    { type: "message", data: "x", id: "3" },
  ]);
});

test("chunks split inside lines, inside CRLF and inside a multi-byte character", async () => {
  const bytes = new TextEncoder().encode("event: e\r\ndata: 日本\r\n\r\n");
  const chunks = Array.from(bytes, (byte) => new Uint8Array([byte]));
  const { events } = await parse(...chunks);
  assert.deepEqual(events, [{ type: "e", data: "日本", id: undefined }]);
});

test("an event without data is not dispatched, and an unfinished one at the end neither", async () => {
  const { events } = await parse("event: nothing\n\nevent: cut\ndata: half");
  assert.deepEqual(events, []);
});
