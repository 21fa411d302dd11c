// chatkeep's JavaScript client: one dependency-free ES module for browsers and Node 20+.
// It speaks the HTTP API the service's README describes, with `fetch` only: live events come
// over a streamed fetch (not EventSource, which cannot send an Authorization or X-Session-ID
// header) and are parsed here. Types: chatkeep.d.ts, next to this file.

// ---------------------------------------------------------------------------------- errors

/** The service refused the request (`status` and the problem's `title`, `detail`, `field`),
 * or could not be reached (`status` undefined: ConnectionFailed). */
export class ChatkeepError extends Error {
  constructor(detail, { status, title, field, cause } = {}) {
    super(status ? `${status} ${title}: ${detail}` : detail, cause ? { cause } : undefined);
    this.name = new.target.name;
    this.status = status;
    this.title = title;
    this.detail = detail;
    // The input at fault as the service names it (`messages[3].content`, `If-Match`).
    this.field = field;
  }
}
/** No answer from the service (refused, dropped, timed out), retries spent. */
export class ConnectionFailed extends ChatkeepError {}
/** 400: the request could not be read. */
export class BadRequest extends ChatkeepError {}
/** 401: no credentials, or unknown, expired, revoked or forged ones. */
export class Unauthorized extends ChatkeepError {}
/** 403: a known caller not allowed to do this. */
export class Forbidden extends ChatkeepError {}
/** 404: no such thing, or someone else's (the two look the same). */
export class NotFound extends ChatkeepError {}
/** 408: the request's body did not arrive in time. */
export class RequestTimeout extends ChatkeepError {}
/** 409: contradicts what is stored (an id taken by other content, a complete reply). */
export class Conflict extends ChatkeepError {}
/** 412: `ifMatch` named a version the conversation is no longer at: read it again. */
export class PreconditionFailed extends ChatkeepError {}
/** 413: over a size limit. */
export class TooLarge extends ChatkeepError {}
/** 413: the write would take its user or visitor past a quota. */
export class QuotaExceeded extends TooLarge {}
/** 416: the byte range selects nothing of the file. */
export class RangeNotSatisfiable extends ChatkeepError {}
/** 422: well-formed input that cannot be accepted; `field` names it. */
export class InvalidInput extends ChatkeepError {}
/** 429: too many requests; `retryAfter` says how many seconds to wait. */
export class RateLimited extends ChatkeepError {
  constructor(detail, options = {}) {
    super(detail, options);
    this.retryAfter = options.retryAfter;
  }
}
/** 5xx: the service failed. */
export class ServerError extends ChatkeepError {}
/** 503: the database is unreachable or busy; `retryAfter` seconds is worth waiting. */
export class Unavailable extends ServerError {
  constructor(detail, options = {}) {
    super(detail, options);
    this.retryAfter = options.retryAfter;
  }
}

const ERRORS_BY_STATUS = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  408: RequestTimeout,
  409: Conflict,
  412: PreconditionFailed,
  413: TooLarge,
  416: RangeNotSatisfiable,
  422: InvalidInput,
  429: RateLimited,
  503: Unavailable,
};
const QUOTA_TITLE = "Quota exceeded";

/** Seconds a Retry-After header asks for (delay-seconds or an HTTP date), or undefined. */
export function retryAfterSeconds(response) {
  const value = response.headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - Date.now()) / 1000);
}

/** The error an error response stands for (reads its body). */
export async function errorFromResponse(response) {
  const text = await response.text().catch(() => "");
  let problem = {};
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") problem = parsed;
  } catch {
    // Not the service's problem document (a proxy's error page, say).
    problem = { detail: text.slice(0, 500) };
  }
  const status = response.status;
  let Kind = ERRORS_BY_STATUS[status] ?? (status >= 500 ? ServerError : ChatkeepError);
  if (Kind === TooLarge && problem.title === QUOTA_TITLE) Kind = QuotaExceeded;
  const reason = response.statusText || `HTTP ${status}`;
  return new Kind(problem.detail || reason, {
    status,
    title: problem.title || reason,
    field: problem.field ?? undefined,
    retryAfter: retryAfterSeconds(response),
  });
}

// ------------------------------------------------------------------------- ids and names

const EXTERNAL_PREFIX = "ext:";

/** Name a conversation by the application's own id: `ext("session-42")`. */
export function ext(externalId) {
  return EXTERNAL_PREFIX + externalId;
}

/** A random version 4 UUID, also where `crypto.randomUUID` is missing (a page served over
 * plain http from a host other than localhost is not a secure context). */
export function uuid4() {
  if (typeof globalThis.crypto?.randomUUID === "function") return globalThis.crypto.randomUUID();
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** One URL path segment; the service decodes the path before routing, so no `/` inside. */
function segment(value, name) {
  const text = String(value ?? "");
  if (!text || text.includes("/")) {
    throw new TypeError(`${name} ${JSON.stringify(text)} cannot be named in a URL path: use the conversation's id`);
  }
  return encodeURIComponent(text).replace(/%3A/gi, ":");
}

// ------------------------------------------------------------------------------ visitors

// The server's X-Session-ID rule (service/core/visitors.py).
const VISITOR_ID = /^[A-Za-z0-9._~:-]{16,256}$/;
export const VISITOR_STORAGE_KEY = "chatkeep.visitor_id";
const memoryStorage = new Map();

/** Whether `id` is a session id the service accepts as X-Session-ID. */
export function isVisitorId(id) {
  return typeof id === "string" && VISITOR_ID.test(id);
}

/** A new random visitor id (a UUID: 122 random bits). */
export function newVisitorId() {
  return uuid4();
}

function defaultStorage() {
  try {
    // Reading localStorage throws where storage is blocked (sandboxed frames, some privacy modes).
    const storage = globalThis.localStorage;
    if (storage) return storage;
  } catch {
    // fall through to memory
  }
  return undefined;
}

/** This browser's visitor id: the one kept in `storage` (localStorage by default) under
 * `key`, else a new one, stored there. Where no storage is usable the id lives in this
 * module's memory (one page load). */
export function visitorId({ storage = defaultStorage(), key = VISITOR_STORAGE_KEY } = {}) {
  let stored;
  try {
    stored = storage ? storage.getItem(key) : memoryStorage.get(key);
  } catch {
    stored = memoryStorage.get(key);
  }
  if (isVisitorId(stored)) return stored;
  const id = newVisitorId();
  try {
    if (storage) storage.setItem(key, id);
    else memoryStorage.set(key, id);
  } catch {
    memoryStorage.set(key, id);
  }
  return id;
}

/** Forget the stored visitor id (after its history was claimed at login, say). */
export function forgetVisitorId({ storage = defaultStorage(), key = VISITOR_STORAGE_KEY } = {}) {
  memoryStorage.delete(key);
  try {
    storage?.removeItem(key);
  } catch {
    // nothing stored where nothing can be
  }
}

// ------------------------------------------------------------------------------- helpers

const JSON_TYPE = "application/json";
const MERGE_PATCH = "application/merge-patch+json";
const RETRY_STATUSES = new Set([429, 503]);
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };

/** A search hit's `snippet` as plain text: the `<mark>` tags removed, the entities unescaped. */
export function snippetText(snippet) {
  return snippet.replace(/<\/?mark>/g, "").replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (entity) => ENTITIES[entity]);
}

function query(values) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === null) continue;
    params.set(name, value instanceof Date ? value.toISOString() : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

function ifMatchHeader(ifMatch) {
  if (ifMatch === undefined || ifMatch === null) return {};
  if (typeof ifMatch === "number") return { "If-Match": `"${ifMatch}"` };
  if (typeof ifMatch === "string") return { "If-Match": ifMatch };
  throw new TypeError("ifMatch is a version (number), '*' or an ETag");
}

function versionOf(response) {
  const etag = response.headers.get("etag");
  return etag ? Number(etag.replace(/^W\//, "").replaceAll('"', "")) : undefined;
}

function metadataFilter(metadata) {
  return metadata === undefined || metadata === null ? undefined : JSON.stringify(metadata);
}

/** The fields of `object` whose value is not undefined (null stays: it clears). */
function defined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

/** "Full jitter" backoff: a random wait up to base * 2^attempt, at most `max` (ms). */
function backoff(attempt, base, max) {
  return Math.random() * Math.min(max, base * 2 ** attempt);
}

/** Every item of a paged listing: `first()` gives the first page, `next(page)` the
 * following one or null. */
async function* walk(first, next) {
  let page = await first();
  while (true) {
    yield* page.items;
    const following = next(page);
    if (!following) return;
    page = await following;
  }
}

// --------------------------------------------------------------------------- the client

const DEFAULT_RETRY = { retries: 2, backoffMs: 250, maxBackoffMs: 8000, maxRetryAfter: 30 };

/**
 * A client of one chatkeep service. Credentials: `apiKey` (a back end), `token` (a user
 * token: a string, or a function returning one, called for every request), or `sessionId`
 * (an anonymous visitor; `visitor: true` takes `visitorId()`). Exactly one is sent: a token or
 * key as `Authorization: Bearer`, else the session id as `X-Session-ID`.
 */
export class Chatkeep {
  constructor(options = {}) {
    if (typeof options === "string") options = { baseUrl: options };
    const { baseUrl, apiKey, token, sessionId, visitor, fetch: fetcher, retry, timeoutMs, headers } = options;
    this.baseUrl = String(baseUrl ?? globalThis.location?.origin ?? "").replace(/\/+$/, "");
    if (!this.baseUrl) throw new TypeError("baseUrl is required outside a browser page");
    this.apiKey = apiKey;
    this.token = token;
    this.sessionId = sessionId ?? (visitor ? visitorId(visitor === true ? {} : visitor) : undefined);
    if (this.sessionId !== undefined && !isVisitorId(this.sessionId)) {
      throw new TypeError("sessionId must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ : -");
    }
    this.retry = { ...DEFAULT_RETRY, ...retry };
    this.timeoutMs = timeoutMs ?? 30000;
    this.extraHeaders = headers ?? {};
    this._fetch = fetcher ?? ((...args) => globalThis.fetch(...args));

    this.conversations = new Conversations(this);
    this.messages = new Messages(this);
    this.files = new Files(this);
    this.prompts = new Prompts(this);
    this.users = new Users(this);
    this.auth = new Auth(this);
    this.events = new Events(this);
  }

  /** Use a user token from now on (after a login); null goes back to the key or visitor. */
  setToken(token) {
    this.token = token ?? undefined;
  }

  /** The credential headers of the next request. */
  async credentials() {
    const token = typeof this.token === "function" ? await this.token() : this.token;
    const bearer = token || this.apiKey;
    if (bearer) return { Authorization: `Bearer ${bearer}` };
    if (this.sessionId) return { "X-Session-ID": this.sessionId };
    return {};
  }

  /**
   * Send one request and return its Response (2xx), retrying what is safe to retry: a 429 or
   * 503 (nothing was done; after Retry-After), and a failed connection when `idempotent`
   * (sending it twice is the same as once). Error answers become ChatkeepErrors.
   */
  async request(method, path, { body, headers, idempotent = true, signal, goneIsDone = false, timeoutMs } = {}) {
    const { retries, backoffMs, maxBackoffMs, maxRetryAfter } = this.retry;
    const url = this.baseUrl + path;
    let failedBefore = false;
    for (let attempt = 0; ; attempt++) {
      const init = {
        method,
        headers: { ...this.extraHeaders, ...(await this.credentials()), ...headers },
        body: typeof body === "function" ? body() : body,
        signal: withTimeout(signal, timeoutMs ?? this.timeoutMs),
      };
      let response;
      try {
        response = await this._fetch(url, init);
      } catch (error) {
        if (signal?.aborted) throw error;
        if (attempt >= retries || !idempotent) {
          throw new ConnectionFailed(`${method} ${path}: ${error?.message ?? error}`, { cause: error });
        }
        failedBefore = true;
        await sleep(backoff(attempt, backoffMs, maxBackoffMs), signal);
        continue;
      }
      if (response.ok) return response;
      // A delete whose first answer was lost and that finds nothing now did its work then.
      if (goneIsDone && failedBefore && response.status === 404) return response;
      const asked = retryAfterSeconds(response);
      const retryable = RETRY_STATUSES.has(response.status) && attempt < retries;
      if (!retryable || (asked !== undefined && asked > maxRetryAfter)) {
        throw await errorFromResponse(response);
      }
      await response.body?.cancel().catch(() => {});
      await sleep(Math.max(backoff(attempt, backoffMs, maxBackoffMs), (asked ?? 0) * 1000), signal);
    }
  }

  /** A request with a JSON body (or none) whose answer is JSON (or nothing). */
  async json(method, path, { body, contentType = JSON_TYPE, headers, ...rest } = {}) {
    const encoded = body === undefined ? undefined : JSON.stringify(body);
    const sent = encoded === undefined ? headers : { "Content-Type": contentType, ...headers };
    const response = await this.request(method, path, { body: encoded, headers: sent, ...rest });
    return readJson(response);
  }

  /** Messages matching `q` among those the caller may see, best first: `{items, next_cursor}`. */
  search(q, { userId, conversationId, role, topic, since, until, limit, cursor, signal } = {}) {
    const params = query({ q, user_id: userId, conversation_id: conversationId, role, topic, since, until, limit, cursor });
    return this.json("GET", `/v1/search${params}`, { signal });
  }

  /** Every hit of a search, page after page. */
  searchAll(q, { pageSize, ...filters } = {}) {
    const at = (cursor) => this.search(q, { ...filters, limit: pageSize, cursor });
    return walk(() => at(undefined), (page) => page.next_cursor && at(page.next_cursor));
  }
}

function withTimeout(signal, timeoutMs) {
  if (!timeoutMs) return signal;
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any?.([signal, timeout]) ?? signal : timeout;
}

async function readJson(response) {
  if (response.status === 204 || response.status === 404) return undefined;
  const text = await response.text();
  return text ? JSON.parse(text) : undefined;
}

function conversationPath(conversationId) {
  return `/v1/conversations/${segment(conversationId, "conversationId")}`;
}

// ------------------------------------------------------------------------ conversations

class Conversations {
  constructor(client) {
    this.client = client;
  }

  /** Create a conversation. Without `id` nor `external_id` the client picks the id, so a
   * retried create stores one conversation. */
  create({ id, external_id, title, user_id, metadata, expires_at } = {}, { signal } = {}) {
    if (id === undefined && external_id === undefined) id = uuid4();
    const body = defined({ id, external_id, title, user_id, metadata, expires_at });
    return this.client.json("POST", "/v1/conversations", { body, signal });
  }

  /** A conversation (its `version` is what `ifMatch` takes). */
  get(conversationId, { signal } = {}) {
    return this.client.json("GET", conversationPath(conversationId), { signal });
  }

  /** A page of conversations, newest first by `sort`: `{items, next_cursor}`; pass
   * `next_cursor` as `cursor` for the next. */
  list({ userId, metadata, sort, limit, cursor, signal } = {}) {
    const params = query({ user_id: userId, metadata: metadataFilter(metadata), sort, limit, cursor });
    return this.client.json("GET", `/v1/conversations${params}`, { signal });
  }

  /** Every conversation of the listing, page after page. */
  iterate({ pageSize, ...filters } = {}) {
    const at = (cursor) => this.list({ ...filters, limit: pageSize, cursor });
    return walk(() => at(undefined), (page) => page.next_cursor && at(page.next_cursor));
  }

  /** How many conversations the listing with these filters holds. */
  async count({ userId, metadata, signal } = {}) {
    const params = query({ user_id: userId, metadata: metadataFilter(metadata) });
    return (await this.client.json("GET", `/v1/conversations/count${params}`, { signal })).count;
  }

  /** Replace the title, metadata (as a whole) or expires_at; what is left out stays, null
   * clears. With `ifMatch` only if the conversation is still at that version (else 412). */
  update(conversationId, changes, { ifMatch, signal } = {}) {
    return this.client.json("PATCH", conversationPath(conversationId), {
      body: defined(changes),
      headers: ifMatchHeader(ifMatch),
      // Sent again after a lost answer, a conditional write would fail on its own success.
      idempotent: ifMatch === undefined,
      signal,
    });
  }

  /** Merge `patch` into the metadata (RFC 7396: named keys set, nested objects merged, null
   * removes a key, the rest stays). */
  patchMetadata(conversationId, patch, { ifMatch, title, signal } = {}) {
    return this.client.json("PATCH", conversationPath(conversationId), {
      body: defined({ title, metadata: patch }),
      contentType: MERGE_PATCH,
      headers: ifMatchHeader(ifMatch),
      idempotent: ifMatch === undefined,
      signal,
    });
  }

  /** Delete the conversation with its messages and files. */
  async delete(conversationId, { ifMatch, signal } = {}) {
    await this.client.request("DELETE", conversationPath(conversationId), {
      headers: ifMatchHeader(ifMatch),
      idempotent: ifMatch === undefined,
      goneIsDone: true,
      signal,
    });
  }

  /** Delete every conversation matching all the filters (an API key with `erase`); without a
   * filter it needs `confirmAll: true`. `{conversations, messages, files}` deleted. */
  deleteMany({ userId, metadata, updatedBefore, confirmAll = false, signal } = {}) {
    const params = query({
      user_id: userId,
      metadata: metadataFilter(metadata),
      updated_before: updatedBefore,
      confirm: confirmAll ? "all" : undefined,
    });
    return this.client.json("DELETE", `/v1/conversations${params}`, { signal });
  }
}

// ------------------------------------------------------------------------------ messages

/** The message with an id of its own unless it has one or an external id (either makes a
 * retried append find it stored instead of storing it twice). */
function withId(message) {
  return message.id == null && message.external_id == null ? { ...message, id: uuid4() } : message;
}

class Messages {
  constructor(client) {
    this.client = client;
  }

  path(conversationId, messageId) {
    const base = `${conversationPath(conversationId)}/messages`;
    return messageId === undefined ? base : `${base}/${segment(messageId, "messageId")}`;
  }

  /** Append messages in one atomic batch, creating the conversation if needed (owned by
   * `userId`). Each message without an id gets one here, so a retry stores nothing twice.
   * `conversation` is the state change committed with them (`{metadata: <merge patch>,
   * title?}`). Resolves to `{items, version}`. */
  async append(conversationId, messages, { userId, conversation, ifMatch, signal } = {}) {
    const body = defined({ messages: messages.map(withId), user_id: userId, conversation });
    const response = await this.client.request("POST", this.path(conversationId), {
      body: JSON.stringify(body),
      headers: { "Content-Type": JSON_TYPE, ...ifMatchHeader(ifMatch) },
      // With ifMatch a repeat would fail on the version its own first attempt moved.
      idempotent: ifMatch === undefined,
      signal,
    });
    const { items } = await response.json();
    return { items, version: versionOf(response) };
  }

  /** A page of history: by default the latest `limit` (50), oldest first; `before` pages
   * backward, `after` forward (pass `next_cursor` on in the same direction). With `maxTokens`,
   * the context window (`includeSystem`, `prompt`): `{items, tokens, truncated, next_cursor}`. */
  list(conversationId, { limit, before, after, order, topic, maxTokens, includeSystem, prompt, signal } = {}) {
    const params = query({
      limit,
      before,
      after,
      order,
      topic,
      max_tokens: maxTokens,
      include_system: includeSystem,
      prompt,
    });
    return this.client.json("GET", this.path(conversationId) + params, { signal });
  }

  /** Every message, oldest first (newest first with `newestFirst`), page after page. */
  iterate(conversationId, { topic, pageSize, newestFirst = false } = {}) {
    const at = (cursor) =>
      newestFirst
        ? this.list(conversationId, { limit: pageSize, before: cursor, order: "desc", topic })
        : this.list(conversationId, { limit: pageSize, after: cursor ?? 0, topic });
    return walk(() => at(undefined), (page) => page.next_cursor != null && at(page.next_cursor));
  }

  /** Load older history for a view showing the latest messages: the page before seq
   * `before` (or the latest), oldest first. */
  latest(conversationId, { limit, before, topic, signal } = {}) {
    return this.list(conversationId, { limit, before, topic, signal });
  }

  get(conversationId, messageId, { signal } = {}) {
    return this.client.json("GET", this.path(conversationId, messageId), { signal });
  }

  /** Replace content, metadata or tokens (finalising a reply, an edit). */
  update(conversationId, messageId, changes, { signal } = {}) {
    return this.client.json("PATCH", this.path(conversationId, messageId), { body: defined(changes), signal });
  }

  /** Add `content` to the end of a message in progress (a streamed reply); `status:
   * "complete"` finishes it. Not repeated after a lost answer: that would add the text twice. */
  appendContent(conversationId, messageId, content, { status, tokens, signal } = {}) {
    return this.client.json("POST", `${this.path(conversationId, messageId)}/append`, {
      body: defined({ content, status, tokens }),
      idempotent: false,
      signal,
    });
  }

  /** Start a streamed reply: appends an empty message in progress and returns a writer whose
   * `write(text)` grows it and `complete(text?)` finishes it (README "Live updates"). */
  async startReply(conversationId, { role = "assistant", id = uuid4(), metadata, topic, userId, signal } = {}) {
    const message = defined({ id, role, content: "", status: "in_progress", metadata, topic });
    const { items } = await this.append(conversationId, [message], { userId, signal });
    return new ReplyWriter(this, conversationId, items[0]);
  }

  /** Delete one message; the others keep their seqs. */
  async delete(conversationId, messageId, { signal } = {}) {
    await this.client.request("DELETE", this.path(conversationId, messageId), { goneIsDone: true, signal });
  }

  /** Delete the history (one topic's only, with `topic`); resolves to how many went. */
  async clear(conversationId, { topic, signal } = {}) {
    return (await this.client.json("DELETE", this.path(conversationId) + query({ topic }), { signal })).deleted;
  }
}

/** A reply being streamed into a message in progress; `message` is the latest state. */
class ReplyWriter {
  constructor(messages, conversationId, message) {
    this.messages = messages;
    this.conversationId = conversationId;
    this.message = message;
    this.id = message.id;
  }

  async write(text, options = {}) {
    this.message = await this.messages.appendContent(this.conversationId, this.id, text, options);
    return this.message;
  }

  complete(text = "", options = {}) {
    return this.write(text, { ...options, status: "complete" });
  }
}

// --------------------------------------------------------------------------------- files

/** What an upload sends as the file: a Blob or File as it is, bytes or text as a Blob. */
function asBlob(content, contentType) {
  if (content instanceof Blob) {
    return contentType && content.type !== contentType ? new Blob([content], { type: contentType }) : content;
  }
  return new Blob([content], { type: contentType ?? "application/octet-stream" });
}

class Files {
  constructor(client) {
    this.client = client;
  }

  path(conversationId, fileId) {
    const base = `${conversationPath(conversationId)}/files`;
    return fileId === undefined ? base : `${base}/${segment(fileId, "fileId")}`;
  }

  /** Attach a file (a Blob or File, a Uint8Array, ArrayBuffer or string) with its `metadata`;
   * creates the conversation if needed (for `userId`, with an API key). The client picks the
   * file id unless given, so a retried upload stores the file once. */
  upload(conversationId, content, { filename, contentType, metadata, userId, fileId = uuid4(), signal } = {}) {
    const name = filename ?? (typeof File !== "undefined" && content instanceof File ? content.name : undefined);
    if (!name) throw new TypeError("an upload of anything but a File needs a filename");
    const blob = asBlob(content, contentType);
    // A FormData is consumed by sending it: each attempt builds its own.
    const form = () => {
      const data = new FormData();
      if (metadata !== undefined) data.append("metadata", JSON.stringify(metadata));
      if (userId !== undefined) data.append("user_id", userId);
      data.append("file", blob, name);
      return data;
    };
    return this.client
      .request("POST", this.path(conversationId) + query({ file_id: fileId }), { body: form, signal })
      .then(readJson);
  }

  /** A file's description (FileInfo). */
  get(conversationId, fileId, { signal } = {}) {
    return this.client.json("GET", this.path(conversationId, fileId), { signal });
  }

  /** A page of the conversation's files, oldest first: `{items, next_cursor}`. */
  list(conversationId, { limit, cursor, signal } = {}) {
    return this.client.json("GET", this.path(conversationId) + query({ limit, cursor }), { signal });
  }

  iterate(conversationId, { pageSize } = {}) {
    const at = (cursor) => this.list(conversationId, { limit: pageSize, cursor });
    return walk(() => at(undefined), (page) => page.next_cursor && at(page.next_cursor));
  }

  /** Replace a file's metadata. */
  setMetadata(conversationId, fileId, metadata, { signal } = {}) {
    return this.client.json("PATCH", this.path(conversationId, fileId), { body: { metadata }, signal });
  }

  /** The file's bytes as a Blob (typed as uploaded). */
  async download(conversationId, fileId, options = {}) {
    const response = await this.downloadResponse(conversationId, fileId, options);
    const blob = await response.blob();
    const type = response.headers.get("content-type");
    return type && blob.type !== type ? new Blob([blob], { type }) : blob;
  }

  /** The download's Response, to stream its body; `range` (`"bytes=0-99"`) asks for part. */
  downloadResponse(conversationId, fileId, { range, signal } = {}) {
    const headers = range ? { Range: range } : {};
    return this.client.request("GET", `${this.path(conversationId, fileId)}/content`, { headers, signal, timeoutMs: 0 });
  }

  async delete(conversationId, fileId, { signal } = {}) {
    await this.client.request("DELETE", this.path(conversationId, fileId), { goneIsDone: true, signal });
  }
}

// ------------------------------------------------------------------- prompts, users, auth

class Prompts {
  constructor(client) {
    this.client = client;
  }

  path(name) {
    return `/v1/prompts/${segment(name, "name")}`;
  }

  /** Store a new version; putting what the latest version says returns that version. */
  put(name, content, { metadata = {}, signal } = {}) {
    return this.client.json("PUT", this.path(name), { body: { content, metadata }, signal });
  }

  get(name, { version, signal } = {}) {
    return this.client.json("GET", this.path(name) + query({ version }), { signal });
  }

  versions(name, { limit, before, signal } = {}) {
    return this.client.json("GET", `${this.path(name)}/versions${query({ limit, before })}`, { signal });
  }

  list({ limit, after, signal } = {}) {
    return this.client.json("GET", `/v1/prompts${query({ limit, after })}`, { signal });
  }

  async retire(name, { signal } = {}) {
    await this.client.request("DELETE", this.path(name), { goneIsDone: true, signal });
  }
}

class Users {
  constructor(client) {
    this.client = client;
  }

  /** Move the visitor's conversations to the user who just logged in (with the user's token
   * or an API key); resolves to how many moved (claiming again moves nothing). */
  async claim(userId, sessionId, { signal } = {}) {
    const path = `/v1/users/${segment(userId, "userId")}/claim`;
    return (await this.client.json("POST", path, { body: { session_id: sessionId }, signal })).claimed;
  }

  /** Delete every conversation of the user: `{conversations, messages}`. */
  erase(userId, { signal } = {}) {
    return this.client.json("DELETE", `/v1/users/${segment(userId, "userId")}`, { signal });
  }
}

class Auth {
  constructor(client) {
    this.client = client;
  }

  /** A user token for an account (CHATKEEP_ACCOUNTS): `{access_token, token_type, expires_in,
   * user_id}`. Never retried after a lost answer: each failed try counts against the limit. */
  token(username, password, { signal } = {}) {
    return this.client.json("POST", "/v1/auth/token", { body: { username, password }, idempotent: false, signal });
  }

  /** `token()`, then use that token for this client's requests. */
  async login(username, password, options = {}) {
    const issued = await this.token(username, password, options);
    this.client.setToken(issued.access_token);
    return issued;
  }
}

// ---------------------------------------------------------------------------- live events

/** Reads Server-Sent Events from a stream of bytes, as the HTML standard's parser does: yields
 * `{type, data, id, retry}` for each dispatched event; `retry` alone also updates `state`. */
export async function* parseEventStream(body, state = {}) {
  const decoder = new TextDecoder();
  let buffer = "";
  let type = "";
  let data = [];
  function* line(text) {
    if (text === "") {
      if (data.length) yield { type: type || "message", data: data.join("\n"), id: state.lastEventId };
      type = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const name = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") type = value;
    else if (name === "data") data.push(value);
    else if (name === "id" && !value.includes("\0")) state.lastEventId = value;
    else if (name === "retry" && /^\d+$/.test(value)) state.retry = Number(value);
  }
  const reader = body.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A \r ending a chunk may be the first half of \r\n: it ends its line only at the end.
      const lines = buffer.split(done ? /\r\n|\r|\n/ : /\r\n|\r(?!$)|\n/);
      // The last piece is a line not finished yet (at the end: an event cut off, dropped).
      buffer = lines.pop();
      for (const text of lines) yield* line(text);
      if (done) break;
    }
  } finally {
    reader.releaseLock();
  }
}

const STREAM_DEFAULTS = { initialRetryMs: 1000, maxRetryMs: 30000 };

/**
 * One live event stream that reconnects by itself. Read it with `for await (const event of
 * stream)` or with `onEvent`; each event is `{type, data, id}` with `data` parsed from JSON.
 * A conversation stream resumes after the last event id it saw (Last-Event-ID), so nothing is
 * missed or repeated; on a `reset` event load the history again. `close()` ends it.
 */
export class EventStream {
  constructor(client, path, { after, resume = true, endsWith, onEvent, onOpen, onError, signal, ...retry } = {}) {
    this.client = client;
    this.path = path;
    this.resume = resume;
    // The event after which nothing more can come (a conversation's deletion).
    this.endsWith = endsWith;
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onError = onError;
    this.options = { ...STREAM_DEFAULTS, ...retry };
    this.state = { lastEventId: after === undefined ? undefined : String(after), retry: this.options.initialRetryMs };
    this.controller = new AbortController();
    signal?.addEventListener("abort", () => this.close(), { once: true });
    this.queue = [];
    this.waiting = [];
    this.closed = false;
    this.error = undefined;
    this.done = this.run();
  }

  /** The id of the last event received: where a reconnection resumes. */
  get lastEventId() {
    return this.state.lastEventId;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.controller.abort();
    this.settle();
  }

  async run() {
    let failures = 0;
    while (!this.closed) {
      try {
        const response = await this.connect();
        failures = 0;
        this.onOpen?.(response);
        for await (const raw of parseEventStream(response.body, this.state)) {
          this.deliver({ type: raw.type, data: raw.data ? JSON.parse(raw.data) : undefined, id: raw.id });
          if (raw.type === this.endsWith) return this.finish();
        }
        // The server ended the stream (its time limit, a shutdown, a slow reader): resume
        // after the `retry` it asked for.
        await sleep(this.state.retry, this.controller.signal).catch(() => {});
      } catch (error) {
        if (this.closed) return;
        if (error instanceof ChatkeepError && error.status && !RETRY_STATUSES.has(error.status)) {
          // Refused (401, 403, 404, 422): reconnecting would be refused again.
          return this.finish(error);
        }
        this.onError?.(error);
        failures += 1;
        await sleep(this.reconnectDelay(failures, error), this.controller.signal).catch(() => {});
      }
    }
  }

  /** How long to wait after the n-th failure in a row: what Retry-After asks, else the
   * server's `retry` doubled per failure (at most `maxRetryMs`), with jitter. */
  reconnectDelay(failures, error) {
    const asked = error instanceof ChatkeepError ? error.retryAfter : undefined;
    if (asked !== undefined) return asked * 1000;
    const ceiling = Math.min(this.options.maxRetryMs, this.state.retry * 2 ** (failures - 1));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  connect() {
    const headers = { Accept: "text/event-stream" };
    if (this.resume && this.state.lastEventId !== undefined) headers["Last-Event-ID"] = this.state.lastEventId;
    // No timeout: the stream is meant to stay open.
    return this.client.request("GET", this.path, { headers, signal: this.controller.signal, timeoutMs: 0 });
  }

  deliver(event) {
    if (this.onEvent) {
      try {
        this.onEvent(event);
      } catch (error) {
        // The application's handler failed: that is no reason to drop the connection.
        this.onError?.(error);
      }
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve({ value: event, done: false });
    else this.queue.push(event);
  }

  finish(error) {
    this.error = error;
    if (error) this.onError?.(error);
    this.closed = true;
    this.controller.abort();
    this.settle();
  }

  settle() {
    for (const waiter of this.waiting.splice(0)) {
      if (this.error) waiter.reject(this.error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** The next event, or null once the stream is closed. */
  async next() {
    if (this.queue.length) return { value: this.queue.shift(), done: false };
    if (this.closed) {
      if (this.error) throw this.error;
      return { value: undefined, done: true };
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async return() {
    this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

class Events {
  constructor(client) {
    this.client = client;
  }

  /** A conversation's changes: `message.created`, `message.updated`, `message.deleted`,
   * `conversation.updated`, `conversation.deleted` (the stream then ends) and `reset`. `after`
   * starts after that event id (0: from the oldest kept); without it, with the next change. */
  conversation(conversationId, options = {}) {
    const path = `${conversationPath(conversationId)}/events`;
    return new EventStream(this.client, path, { ...options, endsWith: "conversation.deleted" });
  }

  /** Changes to the list of a user's (or the visitor's own) conversations: `ready` (load the
   * list then; it comes again after every reconnection), `conversation.created`, `.updated`,
   * `.deleted`, `reset`. An API key names the user with `userId`. */
  owner({ userId, ...options } = {}) {
    return new EventStream(this.client, `/v1/events${query({ user_id: userId })}`, { ...options, resume: false });
  }
}
