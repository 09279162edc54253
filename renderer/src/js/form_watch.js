//! Tells the renderer when the user edits a form field of the page (true) or submits a form (false), from the "warren" script world.
//
// Injected at document start into the top frame, after form_rules.js inside the same function.
// Only trusted events count: real input, never events a script dispatched (restore.js's
// included). The renderer sends FormEdited only when the value changes, so every edit may post.

const post = (edited) => {
  try {
    window.webkit.messageHandlers.warren.postMessage(edited);
  } catch (e) {
    // The handler is gone: the view is being torn down.
  }
};
const onEdit = (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.type === "password") {
    globalThis.warrenOnceSecret.add(target);
  }
  if (event.isTrusted && warrenControlKind(target) !== null) post(true);
};
addEventListener("input", onEdit, true);
addEventListener("change", onEdit, true);
addEventListener("submit", (event) => {
  if (event.isTrusted) post(false);
}, true);
// A page that comes back from the back/forward cache comes back with its edits.
addEventListener("pageshow", (event) => {
  if (event.persisted && warrenHasEdits()) post(true);
});
