// Documents: upload PDFs (one request per file, for per-file progress), follow each ingest job
// until the file is searchable, list, delete and re-index.

import { api, collection, describeStatus, enc, headers } from "./api.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 400;
let ui = { showBanner: () => {} };

// What a person should read for each reason a file could not be indexed (rag.documents KINDS).
const REASONS = {
  empty: "the file is empty",
  "not-a-pdf": "this is not a PDF",
  corrupt: "the PDF is damaged and cannot be read",
  encrypted: "the PDF is password-protected",
  "no-text": "the PDF has no text layer (a scan?): nothing to search",
  unreadable: "the PDF cannot be read",
  "too-many-pages": "the PDF has more pages than the server allows",
  "too-much-text": "the PDF holds more text than the server allows",
  timeout: "reading the PDF took too long",
  "out-of-memory": "reading the PDF needed too much memory",
  crashed: "the PDF crashed the reader",
  "unreadable-text": "the PDF's fonts map to no characters (its text needs OCR)",
};

export function init(options) {
  ui = options;
  const zone = $("dropzone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    uploadAll(event.dataTransfer.files);
  });
  $("file-input").addEventListener("change", (event) => {
    uploadAll(event.target.files);
    event.target.value = "";
  });
  $("reindex").addEventListener("click", reindex);
}

export async function refresh() {
  const { data } = await api(`${collection.base()}/documents`);
  $("documents").tBodies[0].replaceChildren(...data.map(row));
  ui.collectionsChanged?.(); // the picker shows each collection's document count
}

function row(doc) {
  const tr = document.createElement("tr");
  tr.dataset.name = doc.name;
  for (const value of [doc.name, doc.pages, doc.chunks, size(doc.size)]) {
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(td);
  }
  const button = document.createElement("button");
  button.type = "button";
  button.className = "delete";
  button.textContent = "Delete";
  button.setAttribute("aria-label", `Delete ${doc.name}`);
  button.addEventListener("click", () => remove(doc.name));
  const td = document.createElement("td");
  td.append(button);
  tr.append(td);
  return tr;
}

function size(bytes) {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}

async function remove(name) {
  if (!confirm(`Delete ${name} from the index? Answers will no longer use it.`)) return;
  try {
    await api(`${collection.base()}/documents/${enc(name)}`, { method: "DELETE" });
    await refresh();
  } catch (err) {
    ui.showBanner(err.message);
  }
}

function uploadAll(files) {
  for (const file of files) upload(file);
}

// One file: its upload's progress (XMLHttpRequest: fetch reports none), then its job's.
function upload(file) {
  const item = document.createElement("li");
  item.className = "upload";
  item.dataset.name = file.name;
  const label = document.createElement("span");
  label.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = "uploading";
  item.append(label, bar, status);
  $("uploads").prepend(item);

  const finish = (text, kind) => {
    status.textContent = text;
    item.classList.add(kind);
    bar.value = 1;
  };
  const form = new FormData();
  form.append("files", file, file.name);
  const request = new XMLHttpRequest();
  request.open("POST", `${collection.base()}/documents`);
  for (const [name, value] of Object.entries(headers())) request.setRequestHeader(name, value);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) bar.value = (event.loaded / event.total) * 0.5;
  });
  request.addEventListener("error", () => finish(describeStatus(0), "failed"));
  request.addEventListener("load", () => {
    let body = {};
    try {
      body = JSON.parse(request.responseText);
    } catch {
      // not JSON: the status says enough
    }
    if (request.status !== 202) {
      const message = body?.error?.message ?? `${request.status} ${request.statusText}`;
      finish(describeStatus(request.status, message), "failed");
      return;
    }
    status.textContent = "indexing";
    follow(body.job, (job) => {
      if (job.status === "running" || job.status === "queued") {
        status.textContent = job.status === "queued" ? "waiting for the index" : "indexing";
        bar.value = 0.5 + 0.5 * (job.files_total ? job.files_done / job.files_total : 0);
        return;
      }
      const result = job.result?.files?.[0];
      if (job.status === "done" && result?.status !== "failed") {
        const what = result?.status === "unchanged" ? "already indexed" : "searchable";
        finish(`${what}: ${result?.pages ?? "?"} pages, ${result?.chunks ?? "?"} chunks`, "done");
        refresh().catch(() => {});
      } else {
        finish(`not indexed: ${REASONS[result?.error_kind] ?? result?.error ?? job.error}`, "failed");
      }
    });
  });
  request.send(form);
}

// Poll a job until it is over, handing each state to `update`.
async function follow(job, update) {
  for (;;) {
    update(job);
    if (!["queued", "running"].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      job = await api(`${collection.base()}/jobs/${enc(job.id)}`);
    } catch (err) {
      job = { ...job, status: "failed", error: err.message };
    }
  }
}

async function reindex() {
  const status = $("reindex-status");
  $("reindex").disabled = true;
  try {
    const job = await api(`${collection.base()}/reindex`, { method: "POST" });
    const over = await follow(job, (j) => {
      status.textContent = j.files_total ? `re-indexing: ${j.files_done}/${j.files_total} files` : "re-indexing";
    });
    const files = over.result?.files ?? [];
    const failed = files.filter((f) => f.status === "failed");
    status.textContent =
      over.status === "done"
        ? `re-indexed: ${files.length} files looked at, ${failed.length} not indexed` +
          failed.map((f) => `; ${f.name}: ${REASONS[f.error_kind] ?? f.error}`).join("")
        : `re-index failed: ${over.error}`;
    await refresh();
  } catch (err) {
    status.textContent = err.message;
  } finally {
    $("reindex").disabled = false;
  }
}
