//! Puts a restored page's edited form fields back and scrolls it to where it was, in the "warren" script world.
//
// Runs after form_rules.js, inside the same function; the renderer defines `warrenPage` before
// it: {scrollX, scrollY, fields: [{index, id, name, kind, text | checked | selected}]}. Returns
// JSON text {restored, scrolled}: how many fields were put back, and whether the page reached
// its offset at once (if not, it keeps trying for a while, as the page grows).

const controls = warrenControls();
const attribute = (el, name) => el.getAttribute(name) || "";

// The control a field was captured from: at its index if the id and name still agree, else the
// control with that id, else the only control with that name (a name shared by several, such as
// a group of radio buttons, says nothing about which one).
function find(field) {
  const atIndex = controls[field.index];
  if (atIndex && attribute(atIndex, "id") === field.id && attribute(atIndex, "name") === field.name) {
    return atIndex;
  }
  if (field.id !== "") {
    for (const el of controls) {
      if (attribute(el, "id") === field.id) return el;
    }
  }
  if (field.name !== "") {
    const named = Array.prototype.filter.call(controls, (el) => attribute(el, "name") === field.name);
    if (named.length === 1) return named[0];
  }
  return null;
}

let restored = 0;
for (const field of warrenPage.fields) {
  const el = find(field);
  // A value only ever goes back into the same kind of control, and never into one that is not
  // recorded (a password field that took the captured field's place).
  if (el === null || warrenControlKind(el) !== field.kind) continue;
  if (field.kind === "text") {
    el.value = field.text;
  } else if (field.kind === "checked") {
    el.checked = field.checked;
  } else {
    const chosen = new Set(field.selected);
    if (el.multiple) {
      for (let i = 0; i < el.options.length; i++) el.options[i].selected = chosen.has(i);
    } else {
      el.selectedIndex = field.selected.length > 0 ? field.selected[0] : -1;
    }
  }
  // Frameworks that keep their own copy of a field's value learn of the change from these.
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.dispatchEvent(new Event("change", { bubbles: true }));
  restored++;
}

const x = warrenPage.scrollX;
const y = warrenPage.scrollY;
const reached = () => Math.abs(window.scrollX - x) < 1 && Math.abs(window.scrollY - y) < 1;
const scroll = () => {
  try {
    window.scrollTo({ left: x, top: y, behavior: "instant" });
  } catch (e) {
    window.scrollTo(x, y);
  }
  return reached();
};
const scrolled = scroll();
if (!scrolled) {
  // The document is not yet tall or wide enough (images, fonts or scripts still growing it):
  // try again for up to 2 s, unless the user scrolls or types first. Timers, not animation
  // frames, so that a tab restored in the background (whose frames do not run) gets there too.
  const deadline = performance.now() + 2000;
  const userEvents = ["wheel", "keydown", "mousedown", "touchstart"];
  let done = false;
  const stop = () => {
    done = true;
    for (const type of userEvents) removeEventListener(type, onUser, true);
  };
  const onUser = (event) => {
    if (event.isTrusted) stop();
  };
  for (const type of userEvents) addEventListener(type, onUser, true);
  const retry = () => {
    if (done) return;
    if (scroll() || performance.now() > deadline) {
      stop();
    } else {
      setTimeout(retry, 50);
    }
  };
  setTimeout(retry, 50);
}
return JSON.stringify({ restored, scrolled });
