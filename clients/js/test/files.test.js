import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidInput, NotFound, uuid4 } from "../src/chatkeep.js";
import { keyClient, newUser } from "./helpers.js";

const ck = keyClient();

test("upload a Blob, a File, bytes and text with metadata; download them back", async () => {
  const conversation = uuid4();
  const user = newUser();
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
  const fromBytes = await ck.files.upload(conversation, png, {
    filename: "chart.png",
    contentType: "image/png",
    metadata: { field: "chart" },
    userId: user,
  });
  assert.equal(fromBytes.filename, "chart.png");
  assert.equal(fromBytes.content_type, "image/png");
  assert.equal(fromBytes.size, png.length);
  assert.deepEqual(fromBytes.metadata, { field: "chart" });
  // The upload created the conversation for the user the form named.
  assert.equal((await ck.conversations.get(conversation)).user_id, user);

  const file = new File(["name,total\nA,1\n"], "report.csv", { type: "text/csv" });
  const fromFile = await ck.files.upload(conversation, file);
  assert.equal(fromFile.filename, "report.csv");
  assert.equal(fromFile.content_type, "text/csv");
  const fromText = await ck.files.upload(conversation, "plain words", { filename: "notes.txt", contentType: "text/plain" });

  const downloaded = await ck.files.download(conversation, fromBytes.id);
  assert.deepEqual(new Uint8Array(await downloaded.arrayBuffer()), png);
  assert.equal(downloaded.type, "image/png");
  assert.equal(await (await ck.files.download(conversation, fromText.id)).text(), "plain words");
  const part = await ck.files.downloadResponse(conversation, fromFile.id, { range: "bytes=0-3" });
  assert.equal(part.status, 206);
  assert.equal(await part.text(), "name");

  const listed = [];
  for await (const info of ck.files.iterate(conversation, { pageSize: 2 })) listed.push(info.id);
  assert.deepEqual(listed, [fromBytes.id, fromFile.id, fromText.id]);
  assert.deepEqual((await ck.files.get(conversation, fromFile.id)).metadata, {});
  const described = await ck.files.setMetadata(conversation, fromFile.id, { page: 2 });
  assert.deepEqual(described.metadata, { page: 2 });

  await ck.files.delete(conversation, fromFile.id);
  await assert.rejects(ck.files.get(conversation, fromFile.id), NotFound);
  assert.equal((await ck.files.list(conversation)).items.length, 2);
});

test("an upload retried with its file id stores the file once", async () => {
  const conversation = uuid4();
  const fileId = uuid4();
  const first = await ck.files.upload(conversation, "same", { filename: "a.txt", fileId });
  const again = await ck.files.upload(conversation, "same", { filename: "a.txt", fileId });
  assert.equal(again.id, first.id);
  assert.equal((await ck.files.list(conversation)).items.length, 1);
});

test("bad file metadata is an InvalidInput naming metadata; a nameless upload is refused here", async () => {
  const conversation = uuid4();
  const error = await ck.files.upload(conversation, "x", { filename: "x.txt", metadata: [1] }).catch((caught) => caught);
  assert.ok(error instanceof InvalidInput, String(error));
  assert.equal(error.field, "metadata");
  assert.throws(() => ck.files.upload(conversation, new Uint8Array([1])), TypeError);
});
