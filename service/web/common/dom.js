// What the console and the demo share besides the client (chatkeep.js).

// A new element holding `text` as text: what users wrote is never parsed as HTML.
export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// An error as one line for a status area: the problem's detail and the input it names.
export function describe(error) {
  const field = error.field ? ` (${error.field})` : "";
  return `${error.detail || error.message}${field}`;
}

// The newest page of a conversation read into `messages` (by id) of a view that also follows
// its events. The page may be older than an event already applied: a message in `touched` (an
// event changed it) keeps the event's copy, and a shown message in the page's range that the
// page lacks is dropped (deleted since).
export function mergeNewestPage(messages, page, touched) {
  const inPage = new Set(page.items.map((message) => message.id));
  const oldest = page.next_cursor ? Math.min(...page.items.map((message) => message.seq)) : -Infinity;
  for (const [id, message] of messages) {
    if (message.seq >= oldest && !inPage.has(id) && !touched.has(id)) messages.delete(id);
  }
  for (const message of page.items) {
    if (!touched.has(message.id)) messages.set(message.id, message);
  }
}
