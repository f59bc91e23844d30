// Small builders of DOM elements, and the page helpers every page shares.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An HTML element with its text and attributes. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = "", attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.textContent = text;
  for (const [name, value] of Object.entries(attrs)) e.setAttribute(name, value);
  return e;
}

/** An SVG element with its attributes and text. */
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text = ""): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) e.setAttribute(name, String(value));
  if (text !== "") e.textContent = text;
  return e;
}

/** A table with a header row of `headers` and the given body rows. */
export function table(headers: readonly string[], rows: readonly HTMLTableRowElement[]): HTMLTableElement {
  const head = el("tr");
  head.append(...headers.map((h) => el("th", h, { scope: "col" })));
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...rows);
  const t = el("table");
  t.append(thead, tbody);
  return t;
}

/** A body row of cells in `columns` order, each classed by its column. */
export function row<C extends string>(columns: readonly (readonly [C, string])[], cells: Record<C, string>): HTMLTableRowElement {
  const tr = el("tr");
  tr.append(...columns.map(([key]) => el("td", cells[key], { class: key })));
  return tr;
}

/** The page's element with id `id`, which must be a `type`. */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`missing #${id}`);
  return found;
}

/** Shows `message` in `banner`, or hides it when the message is empty. */
export function showMessage(banner: HTMLElement, message: string): void {
  banner.textContent = message;
  banner.hidden = message === "";
}

/** Replaces what section `#sectionId`'s `.content` holds with `nodes`. */
export function fillSection(sectionId: string, nodes: Node[]): void {
  const content = document.querySelector(`#${sectionId} > .content`);
  if (content === null) throw new Error(`missing #${sectionId} > .content`);
  content.replaceChildren(...nodes);
}
