// The demo chat: a reference front end written on chatkeep's JavaScript client.
//
// - An anonymous visitor gets an id kept in localStorage (visitorId()), sent as X-Session-ID:
//   the history survives a reload, and every tab of this browser is the same visitor.
// - The page opens the conversation's event stream first, then loads the latest page, and
//   applies events by message id, so tabs update each other live.
// - Logging in (the demo's own POST /demo/login, standing in for an application's login
//   service) gives a user token; the page then claims the visitor's history for the user.
import { Chatkeep, NotFound, Conflict, forgetVisitorId, uuid4, visitorId } from "/demo/chatkeep.js";
import { describe, element, mergeNewestPage } from "/demo/dom.js";

// Demo only: a real application keeps its own session; tabs share these through localStorage.
const TOKEN_STORAGE = "chatkeep-demo-login";
const CONVERSATION_STORAGE = "chatkeep-demo-conversation";
const $ = (id) => document.getElementById(id);

const chat = {
  client: null,
  login: null, // {access_token, user_id} when logged in
  conversationId: null,
  messages: new Map(),
  stream: null,
  run: 0, // which start() is the current one
  touched: new Set(), // ids of the messages the stream's events changed
};

function say(text) {
  $("status").textContent = text;
}

function storedLogin() {
  try {
    return JSON.parse(localStorage.getItem(TOKEN_STORAGE));
  } catch {
    return null;
  }
}

// Who this tab is: the logged-in user, else this browser's visitor.
function clientFor(login) {
  return login ? new Chatkeep({ token: login.access_token }) : new Chatkeep({ visitor: true });
}

// The conversation this browser shows: the one it remembers, else the caller's newest, else a
// new one (appending to it creates it).
async function chooseConversation() {
  const remembered = localStorage.getItem(CONVERSATION_STORAGE);
  if (remembered) return remembered;
  const { items } = await chat.client.conversations.list({ limit: 1 });
  const id = items.length ? items[0].id : uuid4();
  localStorage.setItem(CONVERSATION_STORAGE, id);
  return id;
}

async function ensureConversation(id) {
  try {
    await chat.client.conversations.get(id);
  } catch (error) {
    if (!(error instanceof NotFound)) throw error;
    try {
      await chat.client.conversations.create({ id, title: "Demo chat" });
    } catch (raced) {
      if (!(raced instanceof Conflict)) throw raced; // another tab created it just now
    }
  }
}

// start() runs again on a reset, on log-in and log-out, and when another tab logs in or out: a
// newer run supersedes the one still waiting, which then stops at its next step.
async function start() {
  const run = ++chat.run;
  if (chat.stream) chat.stream.close();
  chat.stream = null;
  chat.conversationId = null;
  showLive(false);
  // Nothing to send to until the conversation is chosen and followed.
  setComposing(false);
  chat.login = storedLogin();
  chat.client = clientFor(chat.login);
  chat.messages = new Map();
  renderMessages();
  showWho();
  try {
    const conversationId = await chooseConversation();
    await ensureConversation(conversationId);
    if (run !== chat.run) return;
    chat.conversationId = conversationId;
    // Follow first, then load: once the stream is open, every later change reaches it.
    await follow(run);
    if (run !== chat.run) return;
    const count = await loadLatest(run);
    if (run !== chat.run) return;
    say(count ? "History loaded." : "Say hello.");
  } catch (error) {
    if (run === chat.run) say(describe(error));
  } finally {
    if (run === chat.run && chat.conversationId) setComposing(true);
  }
}

// Open the conversation's stream; settles once it is open, or has failed a first time (it
// then retries by itself), or was closed.
function follow(run) {
  let failed = false;
  let opened;
  const open = new Promise((settle) => (opened = settle));
  const stream = chat.client.events.conversation(chat.conversationId, {
    onOpen: () => {
      showLive(true);
      // Open only after a failure, so maybe after the page was read: read what came between.
      if (failed) loadLatest(run).catch((error) => say(describe(error)));
      opened();
    },
    onEvent: (event) => {
      if (run === chat.run) applyEvent(event);
    },
    onError: (error) => {
      showLive(false);
      say(`Live updates: ${describe(error)}`);
      failed = true;
      opened(); // the history still loads
    },
  });
  chat.stream = stream;
  chat.touched = new Set();
  return Promise.race([open, stream.done]);
}

// Read the newest page into the view (mergeNewestPage: the stream's events since it opened win);
// returns how many messages it held.
async function loadLatest(run) {
  const page = await chat.client.messages.latest(chat.conversationId);
  if (run !== chat.run) return 0;
  mergeNewestPage(chat.messages, page, chat.touched);
  renderMessages();
  return page.items.length;
}

function applyEvent({ type, data }) {
  if (type === "message.created" || type === "message.updated") chat.messages.set(data.id, data);
  else if (type === "message.deleted") chat.messages.delete(data.id);
  else if (type === "reset") return void start();
  else return;
  chat.touched.add(data.id);
  renderMessages();
}

function setComposing(ready) {
  for (const control of $("send").elements) control.disabled = !ready;
}

function renderMessages() {
  const ordered = [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
  $("messages").replaceChildren(
    ...ordered.map((message) => {
      const item = element("li", null, `message ${message.role}`);
      item.dataset.seq = message.seq;
      item.append(element("span", message.role === "user" ? "You" : "Assistant", "who"));
      item.append(element("p", message.content));
      return item;
    }),
  );
  $("messages").lastElementChild?.scrollIntoView({ block: "end" });
}

// Whether this tab's event stream is open: other tabs' messages appear as they are written.
function showLive(open) {
  $("live").textContent = open ? "● Live" : "○ Connecting";
  $("live").classList.toggle("open", open);
}

function showWho() {
  $("login").hidden = Boolean(chat.login);
  $("logged-in").hidden = !chat.login;
  $("who").textContent = chat.login ? `Logged in as ${chat.login.user_id}` : "";
}

// The demo's assistant: it repeats what it is told, streamed in a few pieces so other tabs
// watch the reply grow (message.updated events).
function replyTo(text) {
  return ["You said: ", `“${text}”. `, "(chatkeep keeps this history.)"];
}

async function send(text) {
  const id = chat.conversationId;
  try {
    await chat.client.messages.append(id, [{ role: "user", content: text }]);
    const reply = await chat.client.messages.startReply(id);
    const pieces = replyTo(text);
    for (const piece of pieces.slice(0, -1)) await reply.write(piece);
    await reply.complete(pieces.at(-1));
  } catch (error) {
    say(describe(error));
  }
}

async function logIn(username) {
  let login;
  let claimed;
  try {
    const response = await fetch("/demo/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username }),
    });
    if (!response.ok) throw Object.assign(new Error((await response.json()).detail), { field: "username" });
    login = await response.json();
    // The visitor's history becomes the user's: claimed with the user's own token.
    claimed = await clientFor(login).users.claim(login.user_id, visitorId());
  } catch (error) {
    say(describe(error));
    return;
  }
  localStorage.setItem(TOKEN_STORAGE, JSON.stringify(login));
  // This browser's visitor has no history left; a later log-out starts a new one.
  forgetVisitorId();
  await start();
  say(`Welcome, ${login.user_id}: ${claimed} conversation(s) moved to you.`);
}

async function logOut() {
  localStorage.removeItem(TOKEN_STORAGE);
  localStorage.removeItem(CONVERSATION_STORAGE);
  await start();
  say("Logged out: a new anonymous chat.");
}

$("send").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  $("message").value = "";
  send(text);
});
// Enter sends; Shift+Enter is a new line.
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("send").requestSubmit();
  }
});
$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  logIn($("username").value.trim());
});
$("logout").addEventListener("click", logOut);
// Another tab logged in or out: follow it.
window.addEventListener("storage", (event) => {
  if (event.key === TOKEN_STORAGE) start();
});

start();
