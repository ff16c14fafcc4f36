// The account console: plain JavaScript, no framework, no build step.
// Every action is a call to the admin JSON API (/console/api/X is /admin/v1/X
// as the signed-in account or admin); nothing secret is kept in storage or URLs.

const API = "/console/api/";
const DAY_MS = 86_400_000;
const WINDOW_DAYS = 30;
const RETENTION_DAYS = 30;

const $ = (id) => document.getElementById(id);
let session = { signed_in: false };
/** The account shown: an account token's own, or the admin's pick. */
let account = "";
/** The usage rows last shown, for the CSV download. */
let usageRows = { day: [], model: [] };

async function api(method, route, body) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = session.csrf_token;
  const res = await fetch(API + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401) return signedOut("Your session ended; sign in again.");
  if (!res.ok) throw new Error(json.error?.message ?? `HTTP ${res.status}`);
  return json;
}

function notice(text) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = !text;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
  return td;
}

function day(iso) {
  return iso ? iso.slice(0, 10) : "—";
}

function signedOut(message) {
  session = { signed_in: false };
  for (const id of ["keys", "usage", "privacy", "experiments", "nav", "signout", "account-picker"]) $(id).hidden = true;
  $("signin").hidden = false;
  $("who").textContent = "";
  notice(message ?? "");
  throw new Error("signed out");
}

async function start() {
  if (new URLSearchParams(location.search).get("signin") === "failed") {
    $("signin-error").hidden = false;
    history.replaceState(null, "", "/console/");
  }
  session = await (await fetch("/console/session", { credentials: "same-origin" })).json();
  if (!session.signed_in) {
    $("signin").hidden = false;
    return;
  }
  $("signin").hidden = true;
  $("signout").hidden = false;
  $("nav").hidden = false;
  const admin = session.role === "admin";
  $("who").textContent = admin ? "Signed in as admin" : `Signed in as account ${session.account}`;
  $("nav-experiments").hidden = !admin;
  $("experiments").hidden = !admin;
  if (admin) {
    const { data } = await api("GET", "accounts");
    const select = $("account");
    select.replaceChildren(...data.map((a) => new Option(`${a.id}${a.name && a.name !== a.id ? ` (${a.name})` : ""}`, a.id)));
    $("account-picker").hidden = false;
    account = data[0]?.id ?? "";
    select.addEventListener("change", () => {
      account = select.value;
      void refresh();
    });
    void loadExperiments();
  } else {
    account = session.account;
  }
  for (const id of ["keys", "usage", "privacy"]) $(id).hidden = false;
  await refresh();
}

async function refresh() {
  try {
    await Promise.all([loadKeys(), loadUsage(), loadPrivacy()]);
  } catch (err) {
    if (err.message !== "signed out") notice(err.message);
  }
}

const accountQuery = () => `account=${encodeURIComponent(account)}`;

async function loadKeys() {
  const from = new Date(Date.now() - WINDOW_DAYS * DAY_MS).toISOString();
  const [{ data: keys }, { data: perKey }, { data: ever }] = await Promise.all([
    api("GET", `keys?${accountQuery()}`),
    api("GET", `usage?${accountQuery()}&by=key&from=${from}`),
    api("GET", `usage?${accountQuery()}&by=key`),
  ]);
  const requests = new Map(perKey.map((r) => [r.group, r.requests]));
  const lastUsed = new Map(ever.map((r) => [r.group, r.last_at]));
  const rows = keys.map((k) => {
    const tr = document.createElement("tr");
    tr.dataset.keyId = k.id;
    const state = k.revoked_at
      ? "revoked"
      : k.expires_at && Date.parse(k.expires_at) <= Date.now()
        ? "expired"
        : k.previous_secret_valid_until && Date.parse(k.previous_secret_valid_until) > Date.now()
          ? `active (old secret until ${k.previous_secret_valid_until.slice(0, 16).replace("T", " ")} UTC)`
          : "active";
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = k.name;
    tr.append(th);
    cell(tr, k.hint);
    cell(tr, day(k.created_at));
    const last = lastUsed.get(k.id);
    cell(tr, last ? `${last.slice(0, 16).replace("T", " ")} UTC` : "never");
    cell(tr, String(requests.get(k.id) ?? 0));
    cell(tr, `${k.rpm ? `${k.rpm} req/min` : "no request limit"}, ${k.tpm ? `${k.tpm} tokens/min` : "no token limit"}`);
    cell(tr, k.models.length ? k.models.join(", ") : "all");
    cell(tr, state).className = "state";
    const actions = cell(tr, "");
    if (!k.revoked_at) {
      const rotate = document.createElement("button");
      rotate.type = "button";
      rotate.textContent = "Rotate";
      rotate.setAttribute("aria-label", `Rotate key ${k.name}`);
      rotate.addEventListener("click", () => void rotateKey(k));
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.textContent = "Revoke";
      revoke.className = "danger";
      revoke.setAttribute("aria-label", `Revoke key ${k.name}`);
      revoke.addEventListener("click", () => void revokeKey(k));
      actions.append(rotate, " ", revoke);
    }
    return tr;
  });
  $("keys-table").tBodies[0].replaceChildren(...rows);
}

function showNewKey(title, key) {
  $("new-key-title").textContent = title;
  $("new-key-value").value = key;
  $("copy-status").textContent = "";
  $("new-key").hidden = false;
  $("new-key-value").focus();
  $("new-key-value").select();
}

async function createKey(event) {
  event.preventDefault();
  const form = event.target;
  const models = form.models.value
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean);
  try {
    const created = await api("POST", "keys", { account, name: form.name.value, models, rpm: Number(form.rpm.value) || 0, tpm: Number(form.tpm.value) || 0 });
    showNewKey(`Your new key "${created.name}".`, created.key);
    form.reset();
    await loadKeys();
  } catch (err) {
    if (err.message !== "signed out") notice(`Could not create the key: ${err.message}`);
  }
}

async function rotateKey(k) {
  const graceMs = Number($("grace").value);
  if (!confirm(`Rotate key "${k.name}"? ${graceMs ? "The old secret keeps working for the grace period." : "The old secret stops working at once."}`)) return;
  try {
    const rotated = await api("POST", `keys/${encodeURIComponent(k.id)}/rotate`, { grace_ms: graceMs });
    showNewKey(`The new secret of "${rotated.name}".`, rotated.key);
    await loadKeys();
  } catch (err) {
    if (err.message !== "signed out") notice(`Could not rotate: ${err.message}`);
  }
}

async function revokeKey(k) {
  if (!confirm(`Revoke key "${k.name}" (${k.hint})? Requests with it are refused from now on. This cannot be undone.`)) return;
  try {
    await api("POST", `keys/${encodeURIComponent(k.id)}/revoke`);
    notice(`Key "${k.name}" revoked.`);
    await loadKeys();
  } catch (err) {
    if (err.message !== "signed out") notice(`Could not revoke: ${err.message}`);
  }
}

async function copyKey() {
  const value = $("new-key-value").value;
  try {
    await navigator.clipboard.writeText(value);
    $("copy-status").textContent = "Copied.";
  } catch {
    $("new-key-value").select();
    $("copy-status").textContent = "Press Ctrl+C (or ⌘C) to copy the selected key.";
  }
}

function fillUsageTable(id, rows) {
  $(id).tBodies[0].replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = r.group;
      tr.append(th);
      for (const v of [r.requests, r.prompt_tokens, r.completion_tokens, r.total_tokens]) cell(tr, String(v));
      return tr;
    }),
  );
}

async function loadUsage() {
  const start = Math.floor(Date.now() / DAY_MS) * DAY_MS - (WINDOW_DAYS - 1) * DAY_MS;
  const from = new Date(start).toISOString();
  const [byDay, byModel] = await Promise.all([
    api("GET", `usage?${accountQuery()}&by=day&from=${from}`),
    api("GET", `usage?${accountQuery()}&by=model&from=${from}`),
  ]);
  usageRows = { day: byDay.data, model: byModel.data };
  fillUsageTable("usage-day-table", usageRows.day);
  fillUsageTable("usage-model-table", usageRows.model);
  const stamp = Date.now();
  $("chart-day-requests").src = `/console/charts/usage.svg?by=day&metric=requests&${accountQuery()}&t=${stamp}`;
  $("chart-day-tokens").src = `/console/charts/usage.svg?by=day&metric=tokens&${accountQuery()}&t=${stamp}`;
  $("chart-model-tokens").src = `/console/charts/usage.svg?by=model&metric=tokens&${accountQuery()}&t=${stamp}`;
}

function downloadCsv() {
  const quote = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));
  const lines = ["group_by,group,requests,prompt_tokens,completion_tokens,total_tokens"];
  for (const by of ["day", "model"])
    for (const r of usageRows[by]) lines.push([by, r.group, r.requests, r.prompt_tokens, r.completion_tokens, r.total_tokens].map(quote).join(","));
  const url = URL.createObjectURL(new Blob([`${lines.join("\n")}\n`], { type: "text/csv" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `usage-${account}-${new Date().toISOString().slice(0, 10)}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function loadPrivacy() {
  const { data } = await api("GET", "accounts");
  const a = data.find((x) => x.id === account);
  if (!a) return;
  $("retention-on").checked = a.retention;
  $("retention-off").checked = !a.retention;
  $("retention-meaning").textContent = a.retention
    ? `Request logs (what was sent and what came back) are kept for ${RETENTION_DAYS} days, then deleted; usage counts stay.`
    : "Request content is never stored for this account; only usage counts (requests and tokens) are kept.";
  $("oldest-log").textContent = a.oldest_request_log_deleted_at
    ? `The oldest stored request log will be deleted on ${a.oldest_request_log_deleted_at.slice(0, 16).replace("T", " ")} UTC.`
    : "No request log is stored for this account.";
}

async function saveRetention(event) {
  event.preventDefault();
  try {
    const updated = await api("PATCH", `accounts/${encodeURIComponent(account)}`, { retention: $("retention-on").checked });
    notice(updated.retention ? "Retention on: request logs are kept 30 days." : "Retention off: request content is no longer stored.");
    await loadPrivacy();
  } catch (err) {
    if (err.message !== "signed out") notice(`Could not save: ${err.message}`);
  }
}

async function loadExperiments() {
  const list = $("experiment-list");
  try {
    const { data } = await api("GET", "experiments");
    if (!data.length) {
      list.textContent = "No experiments are configured.";
      return;
    }
    const parts = await Promise.all(
      data.map(async (e) => {
        const article = document.createElement("article");
        article.className = "experiment";
        const h = document.createElement("h3");
        h.textContent = `${e.name} (model ${e.model}, ${e.state})`;
        const split = document.createElement("p");
        split.textContent = `Arms and split: ${e.arms.map((a) => `${a.backend} ${a.weight}`).join(", ")}; ${e.requests} requests assigned.`;
        const name = encodeURIComponent(e.name);
        const res = await fetch(`${API}experiments/${name}/report?format=text`, { credentials: "same-origin" });
        const pre = document.createElement("pre");
        pre.textContent = res.ok ? await res.text() : `No report: HTTP ${res.status}`;
        pre.tabIndex = 0;
        pre.setAttribute("aria-label", `Report of ${e.name}`);
        const img = document.createElement("img");
        img.src = `${API}experiments/${name}/report?format=svg`;
        img.alt = `Plot of the ${e.name} report: each arm's difference from the control with its confidence interval`;
        article.append(h, split, pre, img);
        return article;
      }),
    );
    list.replaceChildren(...parts);
  } catch (err) {
    if (err.message !== "signed out") list.textContent = `Could not load experiments: ${err.message}`;
  }
}

async function signOut() {
  await fetch("/console/session", { method: "DELETE", headers: { "x-csrf-token": session.csrf_token }, credentials: "same-origin" });
  location.assign("/console/");
}

$("create-key").addEventListener("submit", (e) => void createKey(e));
$("copy-key").addEventListener("click", () => void copyKey());
$("csv").addEventListener("click", downloadCsv);
$("retention-form").addEventListener("submit", (e) => void saveRetention(e));
$("signout").addEventListener("click", () => void signOut());
start().catch((err) => {
  if (err.message !== "signed out") notice(`The console could not load: ${err.message}`);
});
