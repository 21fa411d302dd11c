// The operator console: an API key (kept in this tab's sessionStorage only) reads what chatkeep
// holds. Everything users wrote goes into the page as text (textContent), never as HTML.
import { Chatkeep } from "/console/chatkeep.js";
import { describe, element, mergeNewestPage } from "/console/dom.js";

const KEY_STORAGE = "chatkeep-console-key";
const $ = (id) => document.getElementById(id);

const state = {
  client: null, // a Chatkeep client with the signed-in key
  listing: null, // {filters, cursor}
  conversation: null, // the Conversation shown
  messages: new Map(), // its messages by id
  olderCursor: null,
  watching: null, // its EventStream
  touched: new Set(), // ids of the messages its events changed
};

function say(text, target = "status") {
  $(target).textContent = text;
}

function report(error, target = "status") {
  say(describe(error), target);
}

// Signing in and out ------------------------------------------------------------------------

async function signIn(key) {
  // An operator sees a refusal at once rather than after retries.
  const client = new Chatkeep({ apiKey: key, retry: { retries: 0 } });
  try {
    await client.conversations.list({ limit: 1 });
  } catch (error) {
    report(error);
    return;
  }
  state.client = client;
  sessionStorage.setItem(KEY_STORAGE, key);
  $("api-key").value = "";
  $("sign-in").hidden = true;
  $("signed-in").hidden = false;
  $("console").hidden = false;
  say("Signed in.");
  $("find-user").focus();
}

function signOut() {
  stopWatching();
  sessionStorage.removeItem(KEY_STORAGE);
  state.client = null;
  $("console").hidden = true;
  $("signed-in").hidden = true;
  $("sign-in").hidden = false;
  for (const list of ["conversations", "hits", "messages"]) $(list).replaceChildren();
  $("conversation").hidden = true;
  say("Signed out.");
  $("api-key").focus();
}

// Finding conversations ---------------------------------------------------------------------

// The form's filters; a metadata filter that is not JSON is named here (the service names one
// that is JSON but no object).
function listingFilters() {
  const filters = { limit: 20, userId: $("find-user").value.trim() || undefined };
  const metadata = $("find-metadata").value.trim();
  if (metadata) {
    try {
      filters.metadata = JSON.parse(metadata);
    } catch {
      throw Object.assign(new Error("the metadata filter is not JSON"), { field: "metadata" });
    }
  }
  return filters;
}

async function findConversations(more) {
  let page;
  try {
    if (!more) state.listing = { filters: listingFilters(), cursor: null };
    const cursor = more ? state.listing.cursor : undefined;
    page = await state.client.conversations.list({ ...state.listing.filters, cursor });
  } catch (error) {
    report(error);
    return;
  }
  if (!more) $("conversations").replaceChildren();
  for (const conversation of page.items) $("conversations").append(conversationItem(conversation));
  state.listing.cursor = page.next_cursor;
  $("more-conversations").hidden = !page.next_cursor;
  if (!more) say(page.items.length ? `${page.items.length} conversations.` : "No conversations.");
}

function conversationItem(conversation) {
  const button = element("button", conversation.title || "(untitled)", "link");
  button.type = "button";
  button.addEventListener("click", () => openConversation(conversation.id));
  const details = [
    conversation.user_id ? `user ${conversation.user_id}` : "no user",
    `${conversation.message_count} messages`,
    `updated ${new Date(conversation.updated_at).toLocaleString()}`,
  ].join(" · ");
  const item = element("li");
  item.append(button, element("small", details), element("code", conversation.id));
  return item;
}

// Search ------------------------------------------------------------------------------------

async function search() {
  const userId = $("search-user").value.trim() || undefined;
  let page;
  try {
    page = await state.client.search($("search-q").value, { userId, limit: 20 });
  } catch (error) {
    report(error);
    return;
  }
  $("hits").replaceChildren(...page.items.map(hitItem));
  say(page.items.length ? `${page.items.length} messages found.` : "No message matches.");
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'" };

// The snippet is HTML-escaped with <mark> around matches; it is rebuilt from text nodes and
// <mark> elements rather than parsed, so nothing in it can become markup.
function snippetNodes(snippet) {
  return snippet.split(/(<mark>|<\/mark>)/).reduce(
    (built, part) => {
      if (part === "<mark>") built.marked = true;
      else if (part === "</mark>") built.marked = false;
      else if (part) {
        const text = part.replace(/&(amp|lt|gt|quot|#x27);/g, (entity) => ENTITIES[entity]);
        built.nodes.push(built.marked ? element("mark", text) : document.createTextNode(text));
      }
      return built;
    },
    { nodes: [], marked: false },
  ).nodes;
}

function hitItem(hit) {
  const button = element("button", hit.conversation_title || "(untitled)", "link");
  button.type = "button";
  button.addEventListener("click", () => openConversation(hit.conversation_id));
  const snippet = element("p", null, "snippet");
  snippet.append(...snippetNodes(hit.snippet));
  const item = element("li");
  item.append(button, element("small", `${hit.role} · #${hit.seq}`), snippet);
  return item;
}

// One conversation --------------------------------------------------------------------------

async function openConversation(id) {
  stopWatching();
  $("watch").checked = false;
  state.messages = new Map();
  let conversation;
  let page;
  try {
    conversation = await state.client.conversations.get(id);
    page = await state.client.messages.latest(id);
  } catch (error) {
    report(error);
    return;
  }
  state.conversation = conversation;
  for (const message of page.items) state.messages.set(message.id, message);
  state.olderCursor = page.next_cursor;
  $("conversation").hidden = false;
  showConversation();
  renderMessages();
  $("conversation-title").focus();
}

async function loadOlder() {
  const id = state.conversation.id;
  try {
    const page = await state.client.messages.latest(id, { before: state.olderCursor });
    for (const message of page.items) state.messages.set(message.id, message);
    state.olderCursor = page.next_cursor;
  } catch (error) {
    report(error);
    return;
  }
  renderMessages();
}

function showConversation() {
  const conversation = state.conversation;
  $("conversation-title").textContent = conversation.title || "(untitled)";
  const facts = [
    ["Id", conversation.id],
    ["User", conversation.user_id || "none"],
    ["Messages", conversation.message_count],
    ["Created", new Date(conversation.created_at).toLocaleString()],
    ["Updated", new Date(conversation.updated_at).toLocaleString()],
    ["Metadata", JSON.stringify(conversation.metadata)],
  ];
  $("conversation-facts").replaceChildren(
    ...facts.flatMap(([name, value]) => [element("dt", name), element("dd", value)]),
  );
}

function renderMessages() {
  const ordered = [...state.messages.values()].sort((a, b) => a.seq - b.seq);
  $("messages").replaceChildren(
    ...ordered.map((message) => {
      const item = element("li", null, `message ${message.role}`);
      const about = [message.role, `#${message.seq}`, new Date(message.created_at).toLocaleString()];
      if (message.topic) about.push(`topic ${message.topic}`);
      if (message.status === "in_progress") about.push("in progress");
      item.append(element("small", about.join(" · ")), element("p", message.content));
      return item;
    }),
  );
  $("older").hidden = !state.olderCursor;
}

function applyEvent({ type, data }) {
  if (type === "message.created" || type === "message.updated") {
    state.messages.set(data.id, data);
    state.touched.add(data.id);
    renderMessages();
  } else if (type === "message.deleted") {
    state.messages.delete(data.id);
    state.touched.add(data.id);
    renderMessages();
  } else if (type === "conversation.updated") {
    state.conversation = data;
    showConversation();
  } else if (type === "conversation.deleted") {
    say("This conversation was deleted.", "live");
    stopWatching();
  } else if (type === "reset") {
    openConversation(state.conversation.id);
  }
}

function startWatching() {
  say("Connecting...", "live");
  state.touched = new Set();
  const stream = state.client.events.conversation(state.conversation.id, {
    onOpen: () => {
      say("Watching live.", "live");
      catchUp(stream);
    },
    onEvent: applyEvent,
    onError: (error) => say(`Live updates: ${describe(error)}`, "live"),
  });
  state.watching = stream;
}

// The stream follows changes from its opening on; what came between the page's load and then is
// read once more, the newest page merged by mergeNewestPage. (More than a page of new messages
// meanwhile leaves the ones before it out: open it again.)
async function catchUp(stream) {
  let page;
  try {
    page = await state.client.messages.latest(state.conversation.id);
  } catch (error) {
    report(error);
    return;
  }
  if (state.watching !== stream) return; // stopped, or another conversation opened meanwhile
  mergeNewestPage(state.messages, page, state.touched);
  renderMessages();
}

function stopWatching() {
  if (state.watching) state.watching.close();
  state.watching = null;
  say("", "live");
}

// A user's data -----------------------------------------------------------------------------

async function downloadExport() {
  const user = $("export-user").value.trim();
  say("Exporting...", "user-result");
  let blob;
  try {
    const path = `/v1/users/${encodeURIComponent(user)}/export`;
    blob = await (await state.client.request("GET", path, { timeoutMs: 0 })).blob();
  } catch (error) {
    report(error, "user-result");
    return;
  }
  const link = element("a");
  link.href = URL.createObjectURL(blob);
  link.download = `chatkeep-export-${user}.ndjson`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  say(`Export of ${user} downloaded.`, "user-result");
}

function eraseConfirmed() {
  const user = $("erase-user").value.trim();
  return user !== "" && $("erase-confirm").value.trim() === user;
}

async function eraseUser() {
  if (!eraseConfirmed()) return;
  const user = $("erase-user").value.trim();
  try {
    const erased = await state.client.users.erase(user);
    say(
      `Erased ${user}: ${erased.conversations} conversations, ${erased.messages} messages.`,
      "user-result",
    );
    $("erase").reset();
    $("erase-button").disabled = true;
  } catch (error) {
    report(error, "user-result");
  }
}

// Wiring ------------------------------------------------------------------------------------

function on(id, event, handler) {
  $(id).addEventListener(event, (e) => {
    if (event === "submit") e.preventDefault();
    handler(e);
  });
}

on("sign-in", "submit", () => signIn($("api-key").value.trim()));
on("sign-out", "click", signOut);
on("find", "submit", () => findConversations(false));
on("more-conversations", "click", () => findConversations(true));
on("search", "submit", search);
on("older", "click", loadOlder);
on("watch", "change", (e) => (e.target.checked ? startWatching() : stopWatching()));
on("export", "submit", downloadExport);
on("erase", "submit", eraseUser);
for (const id of ["erase-user", "erase-confirm"]) {
  on(id, "input", () => ($("erase-button").disabled = !eraseConfirmed()));
}
$("conversation-title").tabIndex = -1;

const kept = sessionStorage.getItem(KEY_STORAGE);
if (kept) signIn(kept);
else $("api-key").focus();
