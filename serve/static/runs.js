// Eval runs: the run directories the server sees (GET /v1/runs), one run's report.md with its
// plots, or two runs side by side (what `rag eval compare` writes).

import { api, blobUrl, enc } from "./api.js";

const $ = (id) => document.getElementById(id);
let ui = { showBanner: () => {} };

export function init(options) {
  ui = options;
  $("compare").addEventListener("click", compare);
}

export async function refresh() {
  const { data } = await api("/v1/runs");
  $("run-list").replaceChildren(...data.map(item));
  if (!data.length) $("report").textContent = "No evaluation runs yet: `rag eval ...` writes them under runs/.";
  updateCompare();
}

function item(run) {
  const li = document.createElement("li");
  const check = document.createElement("input");
  check.type = "checkbox";
  check.value = run.name;
  check.dataset.modified = run.modified;
  check.setAttribute("aria-label", `Compare ${run.name}`);
  check.addEventListener("change", updateCompare);
  const link = document.createElement("a");
  link.href = "#runs";
  link.className = "run";
  link.textContent = run.name;
  link.title = new Date(run.modified * 1000).toLocaleString();
  link.addEventListener("click", (event) => {
    event.preventDefault();
    show(run.name);
  });
  li.append(check, " ", link);
  return li;
}

// the checked runs, older first: a comparison reads as "before -> after"
function checked() {
  const boxes = [...document.querySelectorAll("#run-list input:checked")];
  return boxes.sort((a, b) => a.dataset.modified - b.dataset.modified).map((c) => c.value);
}

function updateCompare() {
  $("compare").disabled = checked().length !== 2;
}

async function show(name) {
  try {
    const run = await api(`/v1/runs/${enc(name)}`);
    await render(run.html);
  } catch (err) {
    ui.showBanner(err.message);
  }
}

async function compare() {
  const [a, b] = checked();
  try {
    const result = await api(`/v1/runs/compare?a=${enc(a)}&b=${enc(b)}`);
    await render(result.html);
  } catch (err) {
    ui.showBanner(err.message);
  }
}

// The server's HTML (markdown rendered with raw HTML escaped); its images are fetched with the
// key, so they are parsed in an inert <template> first and given object URLs.
async function render(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  const images = [...template.content.querySelectorAll("img")];
  await Promise.all(
    images.map(async (image) => {
      const source = image.getAttribute("src");
      image.removeAttribute("src");
      if (!source?.startsWith("/v1/runs/")) return;
      try {
        image.src = (await blobUrl(source)).url;
      } catch {
        image.alt = `${image.alt} (not available)`;
      }
    }),
  );
  const report = $("report");
  report.replaceChildren(template.content);
  await Promise.all(
    [...report.querySelectorAll("img")].map((image) => image.decode().catch(() => {})),
  );
  report.dataset.ready = "true";
}
