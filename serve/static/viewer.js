// The cited page: rendered by the server (GET .../documents/DOC/pages/N.png), with the cited
// chunk's text located on it by the server (POST .../pages/N/highlights) and drawn over it.

import { api, blobUrl, collection, enc } from "./api.js";

const $ = (id) => document.getElementById(id);
const state = { doc: null, page: 1, pages: 1, text: null, url: null, report: () => {} };

export function init() {
  $("viewer-prev").addEventListener("click", () => show(state.page - 1));
  $("viewer-next").addEventListener("click", () => show(state.page + 1));
  $("viewer-close").addEventListener("click", close);
  $("viewer-pdf").addEventListener("click", openPdf);
}

// Open the passage `text` of `doc`, which runs over pages span.first..span.last, at the page
// whose part of it shares most words with `claim` (what the answer says citing it).
export async function open(doc, span, text, claim, report) {
  // the page count is known once the first page comes back
  Object.assign(state, { doc, pages: Infinity, text: text || null, report: report || state.report });
  $("side").hidden = false;
  $("viewer").hidden = false;
  let page = span.first;
  if (text && claim && span.last > span.first) {
    try {
      page = await bestPage(doc, span, text, claim);
    } catch {
      // the first page of the span, then
    }
  }
  return show(page);
}

const MAX_SPAN = 4; // pages of one passage looked at; a chunk spans one or two

async function bestPage(doc, span, text, claim) {
  const wanted = words(claim);
  const pages = [];
  for (let p = span.first; p <= Math.min(span.last, span.first + MAX_SPAN - 1); p++) pages.push(p);
  const found = await Promise.all(
    pages.map((p) =>
      api(`${collection.base()}/documents/${enc(doc)}/pages/${p}/highlights`, { method: "POST", json: { text } }),
    ),
  );
  const shared = found.map((f) => [...words(f.text || "")].filter((w) => wanted.has(w)).length);
  return pages[shared.indexOf(Math.max(...shared))];
}

// Numbers and words of three letters or more, lowercased: enough to tell which page says it.
function words(text) {
  const tokens = text.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}.,]*[\p{L}\p{N}]/gu) || [];
  return new Set(tokens.filter((w) => w.length >= 3 || /\d/.test(w)));
}

export function close() {
  $("viewer").hidden = true;
  $("side").hidden = !$("sources").children.length;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = null;
}

async function show(page) {
  if (page < 1 || page > state.pages) return;
  const base = `${collection.base()}/documents/${enc(state.doc)}/pages/${page}`;
  const viewer = $("viewer");
  viewer.classList.add("loading");
  viewer.dataset.doc = state.doc;
  viewer.dataset.page = page;
  $("highlights").replaceChildren();
  $("viewer-note").hidden = true;
  try {
    const [{ url, response }, marks] = await Promise.all([
      blobUrl(`${base}.png?width=900`),
      state.text ? api(`${base}/highlights`, { method: "POST", json: { text: state.text } }) : null,
    ]);
    if (state.url) URL.revokeObjectURL(state.url);
    Object.assign(state, { url, page, pages: Number(response.headers.get("X-Page-Count")) || page });
    const image = $("viewer-image");
    await new Promise((resolve) => {
      image.onload = image.onerror = resolve;
      image.src = url;
    });
    image.alt = `${state.doc}, page ${page}`;
    $("viewer-label").textContent = `${state.doc} p.${page} of ${state.pages}`;
    $("viewer-prev").disabled = page <= 1;
    $("viewer-next").disabled = page >= state.pages;
    drawHighlights(marks);
    $("highlights").firstElementChild?.scrollIntoView({ block: "center" });
  } catch (err) {
    state.report(err.message);
  } finally {
    viewer.classList.remove("loading");
  }
}

function drawHighlights(marks) {
  const note = $("viewer-note");
  if (marks && !marks.found) {
    note.textContent = "The cited passage could not be located on this page.";
    note.hidden = false;
  }
  const percent = (x) => `${(x * 100).toFixed(3)}%`;
  $("highlights").replaceChildren(
    ...(marks?.rects ?? []).map((r) => {
      const mark = document.createElement("div");
      mark.className = "highlight";
      Object.assign(mark.style, { left: percent(r.x), top: percent(r.y), width: percent(r.w), height: percent(r.h) });
      return mark;
    }),
  );
}

// The whole PDF in the browser's own viewer, at the page shown here.
async function openPdf() {
  try {
    const { url } = await blobUrl(`${collection.base()}/documents/${enc(state.doc)}/file`);
    window.open(`${url}#page=${state.page}`, "_blank", "noopener");
  } catch (err) {
    state.report(err.message);
  }
}
