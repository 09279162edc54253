//! Which form controls Warren records and restores: shared by every script the renderer runs in its "warren" script world.
//
// The renderer wraps this file and the script that uses it in one function, so nothing here is
// left in the world's global scope. The "warren" world is isolated from the page's scripts: they
// cannot see these functions, nor replace the DOM methods and prototypes used here.
//
// A control is recorded only if it is a `textarea`, a `select`, or an `input` of a text-like
// type, a checkbox or a radio button. Never a password field, nor hidden, file, submit, button,
// image and reset inputs, nor a field whose `autocomplete` says it holds a secret (a password
// shown as text, a one-time code, a card number or its security code).

const warrenSkippedInputTypes = new Set([
  "password", "hidden", "file", "submit", "button", "image", "reset",
]);

const warrenSecretAutocomplete = new Set([
  "current-password", "new-password", "one-time-code", "cc-number", "cc-csc",
]);

// Inputs that were password fields when the user typed into them: a "show password" toggle turns
// them into text fields, which must still never be recorded. Kept on the world's own global
// object (page scripts cannot see it), filled by form_watch.js.
if (!globalThis.warrenOnceSecret) globalThis.warrenOnceSecret = new WeakSet();

// The kind of value a recorded control holds ("text", "checked" or "select"), or null when the
// control is never recorded.
function warrenControlKind(el) {
  if (globalThis.warrenOnceSecret.has(el)) return null;
  let kind;
  if (el instanceof HTMLTextAreaElement) {
    kind = "text";
  } else if (el instanceof HTMLSelectElement) {
    kind = "select";
  } else if (el instanceof HTMLInputElement) {
    if (warrenSkippedInputTypes.has(el.type)) return null;
    kind = el.type === "checkbox" || el.type === "radio" ? "checked" : "text";
  } else {
    return null;
  }
  const autocomplete = (el.getAttribute("autocomplete") || "").toLowerCase().split(/\s+/);
  if (autocomplete.some((token) => warrenSecretAutocomplete.has(token))) return null;
  return kind;
}

// The indices of a select's selected options.
function warrenSelection(select) {
  const selected = [];
  const options = select.options;
  for (let i = 0; i < options.length; i++) {
    if (options[i].selected) selected.push(i);
  }
  return selected;
}

// The indices a select shows when nobody chose anything (what a form reset gives it): the
// options marked `selected` in the markup; a single-choice list shows the last of them, or else
// its first enabled option when it is a drop-down (display size 1).
function warrenDefaultSelection(select) {
  const options = select.options;
  const marked = [];
  for (let i = 0; i < options.length; i++) {
    if (options[i].defaultSelected) marked.push(i);
  }
  if (select.multiple) return marked;
  if (marked.length > 0) return [marked[marked.length - 1]];
  if (select.size > 1) return [];
  for (let i = 0; i < options.length; i++) {
    if (!options[i].matches(":disabled")) return [i];
  }
  return [];
}

// Whether a control of that kind holds something else than its default value.
function warrenIsEdited(el, kind) {
  if (kind === "text") return el.value !== el.defaultValue;
  if (kind === "checked") return el.checked !== el.defaultChecked;
  const now = warrenSelection(el);
  const initial = warrenDefaultSelection(el);
  return now.length !== initial.length || now.some((index, i) => index !== initial[i]);
}

// The main document's form controls in tree order: a field's index is its position here. The
// method is taken from the prototype: a page element named "querySelectorAll" would shadow the
// document's own (named properties of a document override its built-ins in every world).
function warrenControls() {
  return Document.prototype.querySelectorAll.call(document, "input, textarea, select");
}

// Whether any recorded control of the main document was edited.
function warrenHasEdits() {
  for (const el of warrenControls()) {
    const kind = warrenControlKind(el);
    if (kind !== null && warrenIsEdited(el, kind)) return true;
  }
  return false;
}
