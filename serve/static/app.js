// The page: views picked by the URL's hash, the API key dialog, the collection picker.
// Each view lives in its own module and talks to the server only through api.js.

import { api, ApiError, auth, collection } from "./api.js";
import * as chat from "./chat.js";
import * as documents from "./documents.js";
import * as runs from "./runs.js";

const VIEWS = { chat, documents, runs };
const $ = (id) => document.getElementById(id);

export function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message || "";
  banner.hidden = !message;
}

function currentView() {
  const name = location.hash.replace("#", "");
  return name in VIEWS ? name : "chat";
}

async function show() {
  const name = currentView();
  for (const view of Object.keys(VIEWS)) $(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.dataset.view === name);
  }
  try {
    await VIEWS[name].refresh();
    showBanner("");
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) showBanner(err.message);
  }
}

// The collections this key may read; a 401 here opens the key dialog (auth.onRefused).
async function loadCollections() {
  const { data } = await api("/v1/collections");
  const select = $("collection");
  const names = data.map((c) => c.name);
  if (!names.includes(collection.name())) collection.set(names[0] || "default");
  select.replaceChildren(
    ...data.map((c) => new Option(`${c.name} (${c.documents})`, c.name, false, c.name === collection.name())),
  );
}

function askForKey(message = "") {
  const dialog = $("key-dialog");
  $("key-error").textContent = message;
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
}

async function start() {
  try {
    await loadCollections();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) showBanner(err.message);
    return;
  }
  await show();
}

auth.onRefused = () => {
  const hadKey = Boolean(auth.key());
  auth.set("");
  $("change-key").hidden = false;
  askForKey(hadKey ? "That key was refused." : "");
};

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  auth.set($("key-input").value.trim());
  $("key-input").value = "";
  $("key-dialog").close();
  await start();
});
$("change-key").addEventListener("click", () => askForKey());
$("collection").addEventListener("change", async (event) => {
  collection.set(event.target.value);
  chat.reset();
  await show();
});
window.addEventListener("hashchange", show);
const collectionsChanged = () => loadCollections().catch(() => {});
for (const view of Object.values(VIEWS)) view.init({ showBanner, collectionsChanged });
start();
