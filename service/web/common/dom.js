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
