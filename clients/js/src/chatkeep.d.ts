// Types of chatkeep.js (hand-written: the module runs as it is, with no build step).
// Objects the service sends keep its field names (snake_case, as the README shows them);
// options the client reads are camelCase.

export type Metadata = { [key: string]: unknown };
/** A conversation's UUID, or `ext(externalId)`. */
export type ConversationRef = string;
/** A version (`conversation.version`), `"*"` (it exists) or an ETag as the service sent it. */
export type IfMatch = number | string;
export type MessageStatus = "in_progress" | "complete";

export interface Conversation {
  id: string;
  title: string | null;
  user_id: string | null;
  metadata: Metadata;
  message_count: number;
  created_at: string;
  updated_at: string;
  external_id: string | null;
  /** Moved by every write to the conversation or its messages: what `ifMatch` takes. */
  version: number;
  expires_at: string | null;
}

export interface NewConversation {
  id?: string;
  external_id?: string;
  title?: string;
  user_id?: string;
  metadata?: Metadata;
  /** RFC 3339 with its offset, in the future. */
  expires_at?: string;
}

export interface ConversationChanges {
  title?: string | null;
  metadata?: Metadata;
  expires_at?: string | null;
}

export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  role: string;
  content: string;
  topic: string | null;
  metadata: Metadata;
  created_at: string;
  external_id: string | null;
  tokens: number;
  status: MessageStatus;
}

export interface NewMessage {
  role: string;
  content: string;
  /** Given one here unless it has an `id` or `external_id`: a retried append stores it once. */
  id?: string;
  external_id?: string;
  topic?: string;
  metadata?: Metadata;
  tokens?: number;
  status?: MessageStatus;
}

export interface MessageChanges {
  content?: string;
  metadata?: Metadata;
  tokens?: number;
}

export interface Page<T, Cursor = string> {
  items: T[];
  /** Pass on for the next page; null on the last. */
  next_cursor: Cursor | null;
}

export interface ContextPrompt {
  name: string;
  version: number;
  content: string;
  metadata: Metadata;
  created_at: string;
  tokens: number;
}

export interface MessagePage extends Page<Message, number> {
  /** With `maxTokens`: what the window holds in all. */
  tokens?: number;
  /** With `maxTokens`: older messages were left out. */
  truncated?: boolean;
  prompt?: ContextPrompt;
}

export interface Appended {
  items: Message[];
  /** The conversation's version after the append. */
  version: number;
}

export interface FileInfo {
  id: string;
  conversation_id: string;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
  metadata: Metadata;
}

export interface PromptVersion {
  name: string;
  version: number;
  content: string;
  metadata: Metadata;
  created_at: string;
}

export interface PromptSummary {
  name: string;
  latest_version: number;
  created_at: string;
  updated_at: string;
}

export interface SearchHit {
  conversation_id: string;
  conversation_title: string | null;
  seq: number;
  message_id: string;
  role: string;
  topic: string | null;
  created_at: string;
  rank: number;
  /** HTML-escaped excerpt with `<mark>` around matches: safe to insert as HTML. */
  snippet: string;
}

export interface AccessToken {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  user_id: string;
}

export interface Erased {
  conversations: number;
  messages: number;
}

export interface ConversationsErased extends Erased {
  files: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface RetryOptions {
  /** How many times a request may be sent again (2). */
  retries?: number;
  /** The n-th retry waits a random time up to backoffMs * 2^n (250), at most maxBackoffMs (8000). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A Retry-After longer than this (seconds, 30) is not waited for: the error is thrown. */
  maxRetryAfter?: number;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem?(key: string): void;
}

export interface VisitorIdOptions {
  /** localStorage by default; where none is usable, the module's memory. */
  storage?: StorageLike;
  /** `chatkeep.visitor_id` by default. */
  key?: string;
}

export interface ChatkeepOptions {
  /** The service's URL; in a page, its own origin by default. */
  baseUrl?: string;
  apiKey?: string;
  /** A user token, or a function giving one (called for every request). */
  token?: string | (() => string | Promise<string>);
  /** An anonymous visitor's id, sent as X-Session-ID. */
  sessionId?: string;
  /** Be the visitor `visitorId()` names (with these options when an object). */
  visitor?: boolean | VisitorIdOptions;
  fetch?: typeof fetch;
  retry?: RetryOptions;
  /** Per request (30000); 0: none. Streams and downloads have none. */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface RequestOptions extends CallOptions {
  body?: BodyInit | (() => BodyInit);
  headers?: Record<string, string>;
  /** Sending it twice is the same as once: a lost answer may be retried. */
  idempotent?: boolean;
  goneIsDone?: boolean;
  timeoutMs?: number;
}

export class Chatkeep {
  constructor(options?: ChatkeepOptions | string);
  readonly baseUrl: string;
  apiKey?: string;
  token?: string | (() => string | Promise<string>);
  sessionId?: string;
  readonly conversations: Conversations;
  readonly messages: Messages;
  readonly files: Files;
  readonly prompts: Prompts;
  readonly users: Users;
  readonly auth: Auth;
  readonly events: Events;
  /** Use a user token from now on; null goes back to the API key or visitor id. */
  setToken(token: string | (() => string | Promise<string>) | null): void;
  credentials(): Promise<Record<string, string>>;
  /** One request (retried as safe), its Response when 2xx; else a ChatkeepError. */
  request(method: string, path: string, options?: RequestOptions): Promise<Response>;
  search(q: string, options?: SearchOptions): Promise<Page<SearchHit>>;
  searchAll(q: string, options?: Omit<SearchOptions, "limit" | "cursor"> & { pageSize?: number }): AsyncGenerator<SearchHit>;
}

export interface SearchOptions extends CallOptions {
  userId?: string;
  conversationId?: ConversationRef;
  role?: string;
  topic?: string;
  since?: string | Date;
  until?: string | Date;
  limit?: number;
  cursor?: string;
}

export interface ListConversationsOptions extends CallOptions {
  userId?: string;
  /** Only conversations whose metadata contains this (PostgreSQL's `@>`). */
  metadata?: Metadata;
  sort?: "updated_at" | "created_at";
  limit?: number;
  cursor?: string;
}

export interface Conversations {
  create(conversation?: NewConversation, options?: CallOptions): Promise<Conversation>;
  get(conversationId: ConversationRef, options?: CallOptions): Promise<Conversation>;
  list(options?: ListConversationsOptions): Promise<Page<Conversation>>;
  iterate(options?: Omit<ListConversationsOptions, "limit" | "cursor" | "signal"> & { pageSize?: number }): AsyncGenerator<Conversation>;
  count(options?: { userId?: string; metadata?: Metadata } & CallOptions): Promise<number>;
  update(conversationId: ConversationRef, changes: ConversationChanges, options?: { ifMatch?: IfMatch } & CallOptions): Promise<Conversation>;
  /** RFC 7396 merge patch of the metadata (null removes a key). */
  patchMetadata(conversationId: ConversationRef, patch: Metadata, options?: { ifMatch?: IfMatch; title?: string | null } & CallOptions): Promise<Conversation>;
  delete(conversationId: ConversationRef, options?: { ifMatch?: IfMatch } & CallOptions): Promise<void>;
  deleteMany(options?: { userId?: string; metadata?: Metadata; updatedBefore?: string | Date; confirmAll?: boolean } & CallOptions): Promise<ConversationsErased>;
}

export interface ListMessagesOptions extends CallOptions {
  limit?: number;
  before?: number;
  after?: number;
  order?: "asc" | "desc";
  topic?: string;
  /** The context window: the newest messages whose tokens sum to at most this. */
  maxTokens?: number;
  includeSystem?: boolean;
  prompt?: string;
}

export interface ReplyWriter {
  readonly id: string;
  /** The message as the last write left it. */
  message: Message;
  write(text: string, options?: { tokens?: number } & CallOptions): Promise<Message>;
  complete(text?: string, options?: { tokens?: number } & CallOptions): Promise<Message>;
}

export interface Messages {
  append(
    conversationId: ConversationRef,
    messages: NewMessage[],
    options?: { userId?: string; conversation?: ConversationChanges; ifMatch?: IfMatch } & CallOptions,
  ): Promise<Appended>;
  list(conversationId: ConversationRef, options?: ListMessagesOptions): Promise<MessagePage>;
  iterate(conversationId: ConversationRef, options?: { topic?: string; pageSize?: number; newestFirst?: boolean }): AsyncGenerator<Message>;
  latest(conversationId: ConversationRef, options?: { limit?: number; before?: number; topic?: string } & CallOptions): Promise<MessagePage>;
  get(conversationId: ConversationRef, messageId: string, options?: CallOptions): Promise<Message>;
  update(conversationId: ConversationRef, messageId: string, changes: MessageChanges, options?: CallOptions): Promise<Message>;
  appendContent(
    conversationId: ConversationRef,
    messageId: string,
    content: string,
    options?: { status?: MessageStatus; tokens?: number } & CallOptions,
  ): Promise<Message>;
  startReply(
    conversationId: ConversationRef,
    options?: { role?: string; id?: string; metadata?: Metadata; topic?: string; userId?: string } & CallOptions,
  ): Promise<ReplyWriter>;
  delete(conversationId: ConversationRef, messageId: string, options?: CallOptions): Promise<void>;
  clear(conversationId: ConversationRef, options?: { topic?: string } & CallOptions): Promise<number>;
}

export interface UploadOptions extends CallOptions {
  /** Required unless the content is a File. */
  filename?: string;
  contentType?: string;
  metadata?: Metadata;
  /** With an API key: who owns a conversation the upload creates. */
  userId?: string;
  /** A new UUID unless given: a retried upload stores the file once. */
  fileId?: string;
}

export interface Files {
  upload(conversationId: ConversationRef, content: Blob | File | Uint8Array | ArrayBuffer | string, options?: UploadOptions): Promise<FileInfo>;
  get(conversationId: ConversationRef, fileId: string, options?: CallOptions): Promise<FileInfo>;
  list(conversationId: ConversationRef, options?: { limit?: number; cursor?: string } & CallOptions): Promise<Page<FileInfo>>;
  iterate(conversationId: ConversationRef, options?: { pageSize?: number }): AsyncGenerator<FileInfo>;
  setMetadata(conversationId: ConversationRef, fileId: string, metadata: Metadata, options?: CallOptions): Promise<FileInfo>;
  download(conversationId: ConversationRef, fileId: string, options?: { range?: string } & CallOptions): Promise<Blob>;
  downloadResponse(conversationId: ConversationRef, fileId: string, options?: { range?: string } & CallOptions): Promise<Response>;
  delete(conversationId: ConversationRef, fileId: string, options?: CallOptions): Promise<void>;
}

export interface Prompts {
  put(name: string, content: string, options?: { metadata?: Metadata } & CallOptions): Promise<PromptVersion>;
  get(name: string, options?: { version?: number } & CallOptions): Promise<PromptVersion>;
  versions(name: string, options?: { limit?: number; before?: number } & CallOptions): Promise<Page<PromptVersion, number>>;
  list(options?: { limit?: number; after?: string } & CallOptions): Promise<Page<PromptSummary>>;
  retire(name: string, options?: CallOptions): Promise<void>;
}

export interface Users {
  /** Move a visitor's conversations to the user; how many moved. */
  claim(userId: string, sessionId: string, options?: CallOptions): Promise<number>;
  erase(userId: string, options?: CallOptions): Promise<Erased>;
}

export interface Auth {
  token(username: string, password: string, options?: CallOptions): Promise<AccessToken>;
  /** token(), then the client sends that token. */
  login(username: string, password: string, options?: CallOptions): Promise<AccessToken>;
}

export type ConversationEventType =
  | "message.created"
  | "message.updated"
  | "message.deleted"
  | "conversation.updated"
  | "conversation.deleted"
  | "reset";
export type OwnerEventType = "ready" | "conversation.created" | "conversation.updated" | "conversation.deleted" | "reset";

export interface LiveEvent<Type extends string = string> {
  type: Type;
  /** The event's JSON: a Message, a Conversation, {id, conversation_id, seq}, {id}, {reason}, {}. */
  data: any;
  /** The last event id received (a conversation's stream); what a reconnection resumes after. */
  id: string | undefined;
}

export interface StreamOptions<Type extends string> extends CallOptions {
  /** Called with each event instead of queueing it for iteration. */
  onEvent?: (event: LiveEvent<Type>) => void;
  onOpen?: (response: Response) => void;
  /** Every failure (reconnection follows unless the stream was refused). */
  onError?: (error: unknown) => void;
  /** The first reconnection's wait until the server says (ms, 1000), and the longest (30000). */
  initialRetryMs?: number;
  maxRetryMs?: number;
}

export class EventStream<Type extends string = string> implements AsyncIterableIterator<LiveEvent<Type>> {
  readonly closed: boolean;
  /** Why the stream ended, when it was refused (401, 403, 404, 422). */
  readonly error: ChatkeepError | undefined;
  readonly lastEventId: string | undefined;
  /** Settles when the stream has ended for good. */
  readonly done: Promise<void>;
  close(): void;
  next(): Promise<IteratorResult<LiveEvent<Type>>>;
  return(): Promise<IteratorResult<LiveEvent<Type>>>;
  [Symbol.asyncIterator](): EventStream<Type>;
}

export interface Events {
  conversation(
    conversationId: ConversationRef,
    options?: StreamOptions<ConversationEventType> & { after?: number | string },
  ): EventStream<ConversationEventType>;
  owner(options?: StreamOptions<OwnerEventType> & { userId?: string }): EventStream<OwnerEventType>;
}

export interface ProblemFields {
  status?: number;
  title?: string;
  field?: string;
  cause?: unknown;
  retryAfter?: number;
}

export class ChatkeepError extends Error {
  constructor(detail: string, fields?: ProblemFields);
  /** The HTTP status; undefined when the service could not be reached. */
  readonly status: number | undefined;
  readonly title: string | undefined;
  readonly detail: string;
  /** The input at fault (`messages[3].content`, `If-Match`). */
  readonly field: string | undefined;
}
export class ConnectionFailed extends ChatkeepError {}
export class BadRequest extends ChatkeepError {}
export class Unauthorized extends ChatkeepError {}
export class Forbidden extends ChatkeepError {}
export class NotFound extends ChatkeepError {}
export class RequestTimeout extends ChatkeepError {}
export class Conflict extends ChatkeepError {}
export class PreconditionFailed extends ChatkeepError {}
export class TooLarge extends ChatkeepError {}
export class QuotaExceeded extends TooLarge {}
export class RangeNotSatisfiable extends ChatkeepError {}
export class InvalidInput extends ChatkeepError {}
export class RateLimited extends ChatkeepError {
  /** Seconds to wait before trying again. */
  readonly retryAfter: number | undefined;
}
export class ServerError extends ChatkeepError {}
export class Unavailable extends ServerError {
  readonly retryAfter: number | undefined;
}

export function errorFromResponse(response: Response): Promise<ChatkeepError>;
export function retryAfterSeconds(response: Response): number | undefined;
export function ext(externalId: string): ConversationRef;
export function uuid4(): string;
export const VISITOR_STORAGE_KEY: string;
export function isVisitorId(id: unknown): id is string;
export function newVisitorId(): string;
export function visitorId(options?: VisitorIdOptions): string;
export function forgetVisitorId(options?: VisitorIdOptions): void;
export function snippetText(snippet: string): string;
export function parseEventStream(
  body: ReadableStream<Uint8Array>,
  state?: { lastEventId?: string; retry?: number },
): AsyncGenerator<{ type: string; data: string; id: string | undefined }>;
