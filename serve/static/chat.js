// Chat: questions go to the OpenAI-compatible /v1/chat/completions with stream: true, in a
// server session (POST /v1/sessions) so that follow-ups are rewritten with the history and the
// conversation can be reopened from the list (GET /v1/sessions).

import { api, ApiError, collection, describeStatus, headers } from "./api.js";
import * as viewer from "./viewer.js";

const $ = (id) => document.getElementById(id);
// the server's plain-text sources list (rag.language's headings): shown as a panel here
const SOURCES_LIST = /^\n\n(Sources:|来源：|出典：|출처:)\n/;
let sessionId = null;
let controller = null;
let ui = { showBanner: () => {} };

// Enter to first token, per question: read by the browser tests (and by anyone curious).
window.ragstackTimings = [];

export function init(options) {
  ui = options;
  viewer.init();
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("stop").addEventListener("click", () => controller?.abort());
  $("new-chat").addEventListener("click", () => {
    reset();
    refresh();
    $("question").focus();
  });
}

export function reset() {
  controller?.abort();
  sessionId = null;
  $("messages").replaceChildren();
  showSources([]);
  viewer.close();
}

export async function refresh() {
  const { data } = await api(`${collection.base()}/sessions`);
  $("session-list").replaceChildren(
    ...data.map((s) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "session";
      button.dataset.id = s.id;
      button.textContent = s.title || "(empty conversation)";
      button.title = new Date(s.updated * 1000).toLocaleString();
      button.toggleAttribute("aria-current", s.id === sessionId);
      button.addEventListener("click", () => open(s.id));
      item.append(button);
      return item;
    }),
  );
}

// Reopen a conversation: its turns, with the citations and cited texts the server kept.
async function open(id) {
  reset();
  const { turns } = await api(`${collection.base()}/sessions/${encodeURIComponent(id)}`);
  sessionId = id;
  for (const turn of turns) {
    const item = addMessage(turn.role);
    if (turn.role === "assistant") {
      const extra = { citations: turn.extra?.citations ?? [], sources: turn.extra?.sources ?? [] };
      renderAnswer(item, turn.content, { ...extra, found: turn.extra?.found ?? true });
      showSources(extra.sources, extra.citations);
    } else {
      item.querySelector(".text").textContent = turn.content;
    }
  }
  await refresh();
}

function addMessage(role) {
  const item = document.createElement("li");
  item.className = `message ${role}`;
  const text = document.createElement("div");
  text.className = "text";
  item.append(text);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

async function send() {
  const question = $("question").value.trim();
  if (!question || controller) return;
  const timing = { sent: performance.now() };
  window.ragstackTimings.push(timing);
  $("question").value = "";
  addMessage("user").querySelector(".text").textContent = question;
  const reply = addMessage("assistant");
  reply.classList.add("streaming");
  controller = new AbortController();
  $("stop").disabled = false;
  $("send").disabled = true;
  try {
    if (!sessionId) sessionId = (await api(`${collection.base()}/sessions`, { method: "POST" })).id;
    const final = await stream(question, reply, timing, controller.signal);
    renderAnswer(reply, final.text ?? reply.dataset.raw, final); // the checked text, once known
    showSources(final.sources, final.citations);
  } catch (err) {
    const note = document.createElement("p");
    note.className = "note";
    if (err.name === "AbortError") {
      reply.classList.add("stopped");
      note.textContent = "Stopped.";
    } else {
      reply.classList.add("failed");
      note.textContent = err instanceof ApiError ? err.message : describeStatus(0);
    }
    reply.append(note);
  } finally {
    timing.done = performance.now();
    reply.classList.remove("streaming");
    controller = null;
    $("stop").disabled = true;
    $("send").disabled = false;
    refresh().catch(() => {});
  }
}

// Read the server-sent events; the text grows as tokens come, the last chunk carries the extras.
async function stream(question, reply, timing, signal) {
  const model = collection.name();
  const body = {
    model: model === "default" ? undefined : model,
    stream: true,
    session_id: sessionId,
    messages: [{ role: "user", content: question }],
  };
  let response;
  try {
    response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, describeStatus(0));
  }
  if (!response.ok) {
    // the api() helper's error handling, on a response already in hand
    const error = await response.json().catch(() => ({}));
    const message = error?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, describeStatus(response.status, message));
  }
  const text = reply.querySelector(".text");
  reply.dataset.raw = "";
  let final = { citations: [], sources: [], found: true };
  let buffer = "";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") return final;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(500, chunk.error.message || "generation failed");
      const choice = chunk.choices?.[0];
      const piece = choice?.delta?.content;
      if (piece && !SOURCES_LIST.test(piece)) {
        if (timing.firstToken === undefined) timing.firstToken = performance.now();
        reply.dataset.raw += piece;
        text.textContent = reply.dataset.raw;
        reply.classList.add("has-tokens");
      }
      if (choice?.finish_reason) final = chunk;
    }
  }
  return final;
}

// The answer's text with each [n] a link to the cited page; a refusal shown as one.
function renderAnswer(item, raw, { citations, sources, found }) {
  const text = item.querySelector(".text");
  item.classList.toggle("not-found", found === false);
  const cited = new Map(citations.map((c) => [c.n, c]));
  const byNumber = new Map((sources || []).map((s) => [s.n, s]));
  const sentences = raw.split(/(?<=[.!?])\s+/);
  // what the answer says citing source n: the viewer opens the page of the passage saying it
  const claim = (n) => sentences.filter((s) => s.includes(`[${n}]`)).join(" ") || raw;
  const parts = [];
  let last = 0;
  for (const match of raw.matchAll(/\[(\d+)\]/g)) {
    const citation = cited.get(Number(match[1]));
    if (!citation) continue;
    parts.push(raw.slice(last, match.index));
    parts.push(citationLink(citation, byNumber.get(citation.n), claim(citation.n)));
    last = match.index + match[0].length;
  }
  parts.push(raw.slice(last));
  text.replaceChildren(...parts);
  if (found === false) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = "Nothing in these documents answers that; try other words or other documents.";
    item.append(note);
  }
  if (citations.length) {
    const list = document.createElement("p");
    list.className = "cited";
    list.append("Sources: ");
    for (const c of citations) {
      const pages = c.page_end > c.page_start ? `pp.${c.page_start}-${c.page_end}` : `p.${c.page_start}`;
      list.append(citationLink(c, byNumber.get(c.n), claim(c.n), `[${c.n}] ${c.doc} ${pages}`), " ");
    }
    item.append(list);
  }
}

function citationLink(citation, source, claim, label = `[${citation.n}]`) {
  const link = document.createElement("a");
  link.href = "#chat";
  link.className = "cite";
  link.dataset.n = citation.n;
  link.dataset.doc = citation.doc;
  link.dataset.page = citation.page_start ?? citation.page;
  link.dataset.pageEnd = citation.page_end ?? link.dataset.page;
  link.textContent = label;
  link.title = `${citation.doc} p.${citation.page_start ?? citation.page}`;
  link.addEventListener("click", (event) => {
    event.preventDefault();
    $("side").hidden = false;
    const span = { first: Number(link.dataset.page), last: Number(link.dataset.pageEnd) };
    viewer.open(citation.doc, span, source?.text, claim, ui.showBanner);
  });
  return link;
}

function showSources(sources, citations = []) {
  const cited = new Set(citations.map((c) => c.n));
  $("sources").replaceChildren(
    ...(sources || []).map((s) => {
      const item = document.createElement("li");
      item.className = cited.has(s.n) ? "source cited" : "source";
      const pages = s.page_start === s.page_end ? `p.${s.page_start}` : `pp.${s.page_start}-${s.page_end}`;
      const link = document.createElement("a");
      link.href = "#chat";
      link.textContent = `[${s.n}] ${s.doc} ${pages}`;
      link.addEventListener("click", (event) => {
        event.preventDefault();
        viewer.open(s.doc, { first: s.page_start, last: s.page_end }, s.text, "", ui.showBanner);
      });
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `score ${Number(s.score).toFixed(3)}`;
      item.append(link, " ", score);
      return item;
    }),
  );
  $("side").hidden = !(sources && sources.length) && $("viewer").hidden;
}
