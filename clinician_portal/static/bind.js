"use strict";
// A small template binder: a <template>'s clone filled from data by data-* attributes, as text only.
//   data-text="path" [data-fmt="name"]  the value at path ("$": the data itself), formatted, as text
//   data-each="path"                    the element's own <template> repeated for each item, bound to the item
//   data-show="path" / data-hide="path" the element kept only when the value is present / absent
//   data-class="path" [data-fmt="name"] the (formatted) value added as a class (e.g. a level: "red")
//   data-draw="name"                    hooks.draw[name](element, data) once the clone is in the page
//   data-href="name"                    hooks.links[name](data) as the link's href
// "Present" means not null, not false, not "", not an empty list. Unknown formats show the value as is.

function valueAt(data, path) {
  if (path === "$") return data;
  return path.split(".").reduce((v, key) => (v === null || v === undefined ? undefined : v[key]), data);
}

function present(value) {
  return !(value === null || value === undefined || value === false || value === ""
    || (Array.isArray(value) && value.length === 0));
}

function formatValue(value, name, data, hooks) {
  const format = name && hooks.formats[name];
  if (format) return format(value, data);
  return value === null || value === undefined ? "—" : String(value);
}

// Returns a DocumentFragment; drawing hooks are queued on hooks.pending (run them after inserting it).
function bindTemplate(template, data, hooks) {
  const root = template.content.cloneNode(true);
  const all = (attr) => [...root.querySelectorAll(`[${attr}]`)]; // inner <template>s are not searched
  for (const el of all("data-show")) if (!present(valueAt(data, el.dataset.show))) el.remove();
  for (const el of all("data-hide")) if (present(valueAt(data, el.dataset.hide))) el.remove();
  const each = all("data-each"); // found before the rows go in, so rows are bound to their item only
  for (const el of all("data-text")) el.textContent = formatValue(valueAt(data, el.dataset.text), el.dataset.fmt, data, hooks);
  for (const el of all("data-class")) {
    const value = valueAt(data, el.dataset.class);
    const name = el.dataset.fmt ? formatValue(value, el.dataset.fmt, data, hooks) : value;
    if (present(value) && present(name)) el.classList.add(String(name));
  }
  for (const el of all("data-href")) el.href = hooks.links[el.dataset.href](data);
  for (const el of all("data-draw")) hooks.pending.push(() => hooks.draw[el.dataset.draw](el, data));
  for (const el of each) {
    const row = el.querySelector(":scope > template");
    const items = valueAt(data, el.dataset.each) || [];
    el.append(...items.map((item) => bindTemplate(row, item, hooks)));
  }
  return root;
}
