//! Captures the main document's scroll offset and edited form fields, as JSON text, in the "warren" script world.
//
// Runs after form_rules.js, inside the same function; the renderer defines WARREN_MAX_FIELDS,
// WARREN_MAX_VALUE_LEN and WARREN_MAX_SELECTED before it. The renderer checks every limit again
// in bytes: these checks only keep the result from growing without bound.

const fields = [];
const controls = warrenControls();
const attribute = (el, name) => (el.getAttribute(name) || "").slice(0, WARREN_MAX_VALUE_LEN);
for (let index = 0; index < controls.length && fields.length < WARREN_MAX_FIELDS; index++) {
  const el = controls[index];
  const kind = warrenControlKind(el);
  if (kind === null || !warrenIsEdited(el, kind)) continue;
  const field = { index, id: attribute(el, "id"), name: attribute(el, "name") };
  if (kind === "text") {
    // More UTF-16 units than the limit means more UTF-8 bytes too: such a value is left out.
    if (el.value.length > WARREN_MAX_VALUE_LEN) continue;
    field.text = el.value;
  } else if (kind === "checked") {
    field.checked = el.checked;
  } else {
    const selected = warrenSelection(el);
    if (selected.length > WARREN_MAX_SELECTED) continue;
    field.selected = selected;
  }
  fields.push(field);
}
return JSON.stringify({
  url: location.href,
  scrollX: window.scrollX,
  scrollY: window.scrollY,
  fields,
});
