// The console: a small static app over the service's own JSON API (no build step, no
// assets from elsewhere). The producer token is kept in sessionStorage (gone with the
// tab) and sent as a Bearer token; its scopes decide which pages show. Pages that change
// poll every few seconds while they are open.
"use strict";

const TOKEN_KEY = "waapi-console-token";
const POLL_MS = 3000;
const RECENT_EVENTS = 15; // the overview's recent activity
const FUNNEL_ORDER = [
  "scheduled", "queued", "retry_wait", "sending", "sent", "delivered", "read",
  "unknown", "failed", "dead", "expired", "cancelled", "skipped",
];
const BAD_STATES = new Set(["failed", "dead", "expired", "cancelled"]);
const WAITING_STATES = new Set(["scheduled", "queued", "retry_wait", "sending", "unknown"]);

let me = null; // {name, scopes, numbers, states} of the signed-in token
let pollTimer = null;

// --- small helpers --------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  for (const child of children.flat(Infinity)) {
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function fill(el, ...nodes) {
  // Like replaceChildren, leaving out what a page chose not to show (null, false). A
  // poll that draws what is already shown changes nothing: text someone selected stays
  // selected, and what they are about to click stays where it is.
  const next = document.createElement(el.tagName);
  next.append(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  if (next.innerHTML !== el.innerHTML) el.replaceChildren(...next.childNodes);
}

function show(...nodes) {
  fill(document.getElementById("main"), ...nodes);
}

function flash(text, bad) {
  const el = document.getElementById("flash");
  el.textContent = text;
  el.className = bad ? "flash bad" : "flash";
  el.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

function can(scope) {
  return me !== null && (me.scopes.includes(scope) || me.scopes.includes("admin"));
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

function clock(iso) {
  // A time of day to the millisecond: a job's steps are often within one second.
  const d = new Date(iso);
  if (isNaN(d)) return String(iso || "");
  const two = (n) => String(n).padStart(2, "0");
  return `${d.toLocaleDateString()} ${two(d.getHours())}:${two(d.getMinutes())}:` +
    `${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function stateBadge(state) {
  return h("span", { class: `state ${state}`, "data-state": state }, state);
}

function table(headers, rows, empty) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { class: cls }, label)))),
    h("tbody", {}, rows));
}

class ApiRefusal extends Error {
  constructor(status, text) { super(text); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let payload = null;
  try { payload = await answer.json(); } catch (_) { /* a body that is not JSON */ }
  if (!answer.ok || !payload || payload.success === false) {
    const text = (payload && (payload.error || payload.message)) || `HTTP ${answer.status}`;
    if (answer.status === 401) signOut(text);
    throw new ApiRefusal(answer.status, text);
  }
  return payload;
}

function failed(err) {
  if (!(err instanceof ApiRefusal && err.status === 401)) flash(err.message, true);
}

// --- sign-in --------------------------------------------------------------------------

function signInPage(reason) {
  const input = h("input", {
    id: "token", type: "password", autocomplete: "off", required: true,
    placeholder: "the producer token (DISPATCH_TOKENS)",
  });
  const error = h("p", { id: "signin-error", class: "error" }, reason || "");
  const form = h("form", { class: "card signin", id: "signin" },
    h("h1", {}, "Sign in"),
    h("p", {}, "With a producer token: its scopes (read, campaigns, admin) decide what " +
      "the console shows and allows. It stays in this tab only."),
    h("label", {}, "Token", input),
    error,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "signin-submit" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await loadMe();
      location.hash = can("read") ? "#/overview" : can("campaigns") ? "#/campaigns" : "#/";
      route();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = err.message;
    }
  });
  show(form);
  input.focus();
}

async function loadMe() {
  me = (await api("GET", "/v1/me")).data;
  document.getElementById("who-name").textContent = `${me.name} (${me.scopes.join(", ")})`;
  document.getElementById("who").hidden = false;
  const nav = document.getElementById("nav");
  for (const link of nav.querySelectorAll("a")) link.hidden = !can(link.dataset.scope);
  nav.hidden = false;
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  stopPolling();
  signInPage(reason);
}

// --- polling --------------------------------------------------------------------------

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

function poll(render) {
  // Render now and again every POLL_MS while the page stays the same.
  stopPolling();
  const page = location.hash;
  const tick = async () => {
    try { await render(); } catch (err) { failed(err); }
    if (location.hash === page && me !== null) pollTimer = setTimeout(tick, POLL_MS);
  };
  tick();
}

// --- overview -------------------------------------------------------------------------

function tile(label, value, tone) {
  return h("div", { class: `tile ${tone || ""}` },
    h("div", { class: "value" }, value), h("div", { class: "label" }, label));
}

function overviewPage() {
  const body = h("div", { id: "overview" }, h("p", { class: "muted" }, "Reading the status…"));
  show(h("h1", {}, "Overview"), body);
  let recent = []; // the newest events, newest first
  let lastEvent = null;
  poll(async () => {
    const [s, news] = await Promise.all([
      api("GET", "/v1/status?sampleS=1").then((a) => a.data),
      api("GET", lastEvent ? `/v1/events?after=${lastEvent}&limit=${RECENT_EVENTS}`
        : `/v1/events?limit=${RECENT_EVENTS}`),
    ]);
    lastEvent = news.last || lastEvent;
    recent = [...news.data.reverse(), ...recent].slice(0, RECENT_EVENTS);
    const sentPerS = s.numbers.reduce((sum, n) => sum + n.sentPerS, 0);
    const tiles = h("div", { class: "tiles" },
      tile("sent per second", sentPerS.toFixed(1)),
      tile("workers alive", s.workersAlive, s.workersAlive ? "" : "bad"),
      tile("beat leader", s.beatLeader || "none", s.beatLeader ? "" : "warn"),
      tile("dead letters", s.deadLetters, s.deadLetters ? "bad" : ""),
      tile("ambiguous sends", s.ambiguousSends, s.ambiguousSends ? "warn" : ""),
      tile("rejected messages", s.rejectedMessages, s.rejectedMessages ? "warn" : ""));
    const numbers = s.numbers.map((n) => h("tr", { "data-number": n.number },
      h("td", { class: "mono" }, n.number),
      h("td", {}, n.key),
      h("td", { class: "num" }, n.sentPerS.toFixed(1)),
      h("td", { class: "num" }, n.failedPerS.toFixed(1)),
      h("td", { class: "num" }, n.limitPerS === undefined ? "" : n.limitPerS),
      h("td", { class: "num" }, n.lanes.transactional.messages),
      h("td", { class: "num" }, n.lanes.bulk.messages),
      h("td", { class: "num" }, inFlight(n.lanes)),
      h("td", {}, n.cooldownS ? `${n.cooldownS} s` : ""),
      h("td", {}, n.paused ? stateBadge("paused") : "", n.paused ? ` ${n.paused}` : "")));
    const keys = s.keys.map((k) => h("tr", {},
      h("td", {}, k.name),
      h("td", { class: "num" }, k.perMinute ?? "none"),
      h("td", { class: "num" }, k.perHour ?? "none"),
      h("td", {}, k.cooldownS ? `${k.cooldownS} s` : "")));
    const limits = s.messagingLimits.map((m) => h("tr", {},
      h("td", {}, m.portfolio), h("td", {}, m.tier),
      h("td", { class: "num" }, m.reached24h), h("td", { class: "num" }, m.remaining ?? "")));
    const campaigns = s.campaigns.map((c) => h("tr", {
      class: "link", "data-campaign": c.id,
      onclick: () => { if (can("campaigns")) location.hash = `#/campaigns/${c.id}`; },
    }, h("td", { class: "mono" }, c.id), h("td", {}, stateBadge(c.state)),
    h("td", { class: "num" }, `${c.settled} of ${c.audience}`),
    h("td", { class: "num" }, c.perS),
    h("td", { class: "num" }, c.etaS === null ? "" : `${c.etaS} s`)));
    fill(body,
      tiles,
      h("h2", {}, "Numbers"),
      table([["Number"], ["Key"], ["Sent/s", "num"], ["Failed/s", "num"], ["Limit/s", "num"],
        ["Queued (tx)", "num"], ["Queued (bulk)", "num"], ["In flight", "num"], ["Cooldown"],
        ["Paused"]], numbers, "No numbers configured."),
      h("h2", {}, "Keys"),
      table([["Key"], ["Per minute", "num"], ["Per hour", "num"], ["Cooldown"]], keys,
        "No keys configured."),
      h("h2", {}, "Messaging limits"),
      table([["Portfolio"], ["Tier"], ["Reached 24 h", "num"], ["Remaining", "num"]], limits,
        "No messaging limit heard from Meta yet."),
      h("h2", {}, "Recent activity"),
      table([["At"], ["Job"], ["State"], ["Number"], ["Campaign"], ["Detail"]],
        recent.map((e) => h("tr", { "data-event": e.id },
          h("td", {}, clock(e.at)),
          h("td", { class: "mono" }, e.job ? h("a", { href: `#/jobs/${e.job}` }, e.job) : ""),
          h("td", {}, stateBadge(e.state)), h("td", { class: "mono" }, e.number || ""),
          h("td", { class: "mono" }, e.campaignId || ""),
          h("td", {}, [e.wamid, e.code && `code ${e.code}`, e.status].filter(Boolean).join(" · ")))),
        "Nothing has happened yet."),
      h("h2", {}, "Campaigns running"),
      table([["Campaign"], ["State"], ["Settled", "num"], ["Per second", "num"], ["Left", "num"]],
        campaigns, "No campaign running."),
      h("p", { class: "muted" }, `Rates over ${s.sampleS} s; refreshed every ${POLL_MS / 1000} s.`));
  });
}

function inFlight(lanes) {
  let total = 0;
  for (const lane of Object.values(lanes)) {
    for (const [state, count] of Object.entries(lane)) if (state !== "messages") total += count;
  }
  return total;
}

// --- jobs -----------------------------------------------------------------------------

function jobsPage(params) {
  const field = (name, label, attrs) => h("label", {}, label,
    h("input", { name, id: `jobs-${name}`, value: params.get(name) || "", ...(attrs || {}) }));
  const states = h("select", { name: "state", id: "jobs-state" },
    h("option", { value: "" }, "any"),
    (me.states || []).map((s) => h("option", { value: s, selected: params.get("state") === s }, s)));
  const form = h("form", { class: "row", id: "jobs-search" },
    field("id", "Job id", { size: 34 }),
    field("to", "Recipient", { placeholder: "+15551234567" }),
    field("number", "Sending number"),
    h("label", {}, "State", states),
    field("campaign", "Campaign"),
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const id = String(data.get("id") || "").trim();
    if (id) { location.hash = `#/jobs/${encodeURIComponent(id)}`; return; }
    const query = new URLSearchParams();
    for (const [k, v] of data.entries()) if (String(v).trim()) query.set(k, String(v).trim());
    location.hash = `#/jobs?${query}`;
  });
  const results = h("div", { id: "jobs-results" }, h("p", { class: "muted" }, "Searching…"));
  show(h("h1", {}, "Jobs"), form, results);
  const query = new URLSearchParams(params);
  query.delete("id");
  if (!query.has("limit")) query.set("limit", "50");
  const rows = [];
  let scanned = 0;
  const page = async (cursor) => {
    // One page of the search; "Older jobs" reads the next from where this one stopped.
    if (cursor) query.set("cursor", cursor);
    const answer = await api("GET", `/v1/jobs?${query}`);
    scanned += answer.scanned || 0;
    for (const job of answer.data) {
      rows.push(h("tr", {
        class: "link", "data-job": job.id,
        onclick: () => { location.hash = `#/jobs/${job.id}`; },
      }, h("td", { class: "mono" }, job.id), h("td", {}, stateBadge(job.state)),
      h("td", { class: "mono" }, job.to), h("td", { class: "mono" }, job.fromPhoneNo),
      h("td", {}, job.type), h("td", {}, job.campaignId || ""),
      h("td", {}, when(job.times.created)), h("td", {}, job.error ? job.error.message || "" : "")));
    }
    fill(results,
      table([["Job"], ["State"], ["To"], ["From"], ["Type"], ["Campaign"], ["Created"], ["Error"]],
        rows, "No job matches."),
      query.has("to") ? h("p", { class: "muted" },
        `Searched the newest ${scanned.toLocaleString()} jobs for this recipient.`) : null,
      answer.nextCursor ? h("div", { class: "actions" }, h("button", {
        type: "button", id: "older", class: "secondary",
        onclick: () => page(answer.nextCursor).catch((err) => failed(err)),
      }, "Older jobs")) : null);
  };
  page(null).catch((err) => { fill(results, h("p", { class: "error" }, err.message)); });
}

function jobPage(jobId) {
  const body = h("div", { id: "job" }, h("p", { class: "muted" }, "Loading…"));
  show(h("h1", {}, "Job ", h("span", { class: "mono" }, jobId)), body);
  poll(async () => {
    let job;
    try {
      job = (await api("GET", `/v1/jobs/${encodeURIComponent(jobId)}`)).data;
    } catch (err) {
      if (err.status === 404) { fill(body, h("p", { class: "error" }, "No such job.")); stopPolling(); return; }
      throw err;
    }
    const facts = [
      ["State", stateBadge(job.state)], ["To", job.to], ["From", job.fromPhoneNo],
      ["Channel", job.channel], ["Type", job.type], ["Lane", job.lane],
      ["Attempts", job.attempts], ["wamid", job.wamid], ["Campaign", job.campaignId],
      ["Idempotency key", job.idempotencyKey], ["Queue", job.queue],
      ["Next attempt", when(job.nextAttemptAt)], ["Waiting for", job.waitingFor],
      ["Replay of", job.replayOf], ["Replayed as", job.replayedAs],
      ["Pricing", job.pricing ? `${job.pricing.category}${job.pricing.billable ? ", billable" : ""}` : ""],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "" && v !== 0);
    fill(body,
      h("div", { class: "grid2" },
        h("section", { class: "card" }, h("dl", { class: "facts" },
          facts.map(([k, v]) => [h("dt", {}, k), h("dd", { class: typeof v === "string" ? "mono" : "" }, v)]))),
        h("section", { class: "card" }, h("h2", {}, "Timeline"), timeline(job))),
      job.error ? h("section", { class: "card" }, h("h2", {}, "Last error"),
        h("pre", {}, JSON.stringify(job.error, null, 2))) : null);
  });
}

function timeline(job) {
  // Every state the job reached (its times) and every attempt's note or error (its
  // history), in the order they happened.
  const rank = (state) => (state === "created" ? -1 : FUNNEL_ORDER.indexOf(state));
  const items = Object.entries(job.times).map(([state, at]) => ({ at, state, text: "" }));
  for (const entry of job.history) {
    const error = entry.error ? (entry.error.message || JSON.stringify(entry.error)) : "";
    const text = [entry.attempt ? `attempt ${entry.attempt}` : "", error, entry.note || ""]
      .filter(Boolean).join(" · ");
    items.push({ at: entry.at, state: entry.state, text, bad: Boolean(entry.error) });
  }
  items.sort((a, b) => String(a.at).localeCompare(String(b.at)) || rank(a.state) - rank(b.state));
  return h("ol", { class: "timeline" }, items.map((item) => h("li", { class: item.bad ? "bad" : "" },
    h("time", {}, clock(item.at)), stateBadge(item.state), item.text ? ` ${item.text}` : "")));
}

// --- campaigns ------------------------------------------------------------------------

function campaignsPage() {
  const body = h("div", { id: "campaigns" }, h("p", { class: "muted" }, "Loading…"));
  show(h("h1", {}, "Campaigns"),
    h("div", { class: "actions" }, h("button", {
      type: "button", id: "new-campaign", onclick: () => { location.hash = "#/campaigns/new"; },
    }, "New campaign")), body);
  poll(async () => {
    const list = (await api("GET", "/v1/campaigns")).data;
    fill(body, table(
      [["Name"], ["State"], ["Recipients", "num"], ["Sent", "num"], ["Failed", "num"], ["Next run"]],
      list.map((c) => h("tr", {
        class: "link", "data-campaign": c.id, onclick: () => { location.hash = `#/campaigns/${c.id}`; },
      }, h("td", {}, c.name), h("td", {}, stateBadge(c.state)),
      h("td", { class: "num" }, c.recipients),
      h("td", { class: "num" }, sumOf(c.funnel, ["sent", "delivered", "read"])),
      h("td", { class: "num" }, sumOf(c.funnel, ["failed", "dead", "expired"])),
      h("td", {}, when(c.nextRun)))),
      "No campaigns yet."));
  });
}

function sumOf(funnel, states) {
  return states.reduce((sum, s) => sum + (funnel[s] || 0), 0);
}

function funnelChart(funnel, total) {
  const rows = FUNNEL_ORDER.filter((s) => funnel[s]).map((s) => [s, funnel[s]]);
  const most = Math.max(total, ...rows.map(([, n]) => n), 1);
  const barH = 22, gap = 6, labelW = 90, width = 560, countW = 70;
  const chart = svg("svg", {
    class: "funnel", id: "funnel", width: "100%", viewBox: `0 0 ${width} ${Math.max(rows.length, 1) * (barH + gap)}`,
    role: "img", "aria-label": "campaign funnel",
  });
  if (rows.length === 0) {
    chart.append(svg("text", { x: 0, y: 15 }, "Nothing sent yet."));
    return chart;
  }
  const span = width - labelW - countW;
  rows.forEach(([state, n], i) => {
    const y = i * (barH + gap);
    const tone = BAD_STATES.has(state) ? "bar bad" : WAITING_STATES.has(state) ? "bar wait" : "bar";
    chart.append(
      svg("text", { x: 0, y: y + 15 }, state),
      svg("rect", { class: "track", x: labelW, y, width: span, height: barH, rx: 3 }),
      svg("rect", { class: tone, x: labelW, y, width: Math.max(2, (span * n) / most), height: barH, rx: 3, "data-state": state }),
      svg("text", { x: labelW + span + 8, y: y + 15 }, n.toLocaleString()));
  });
  return chart;
}

function campaignPage(campaignId) {
  const body = h("div", { id: "campaign" }, h("p", { class: "muted" }, "Loading…"));
  const title = h("h1", {}, "Campaign");
  show(title, body);
  const act = async (action) => {
    try {
      await api("POST", `/v1/campaigns/${campaignId}/${action}`);
      flash(`Campaign ${action === "cancel" ? "cancelled" : action === "pause" ? "paused" : "resumed"}.`);
      campaignPage(campaignId);
    } catch (err) { failed(err); }
  };
  poll(async () => {
    const c = (await api("GET", `/v1/campaigns/${encodeURIComponent(campaignId)}`)).data;
    title.textContent = `Campaign ${c.name}`;
    const running = ["scheduled", "running"].includes(c.state); // what pause accepts
    const buttons = h("div", { class: "actions" },
      running ? h("button", { type: "button", id: "pause", class: "secondary", onclick: () => act("pause") }, "Pause") : null,
      c.state === "paused" ? h("button", { type: "button", id: "resume", onclick: () => act("resume") }, "Resume") : null,
      !["cancelled", "done"].includes(c.state)
        ? h("button", { type: "button", id: "cancel", class: "danger", onclick: () => {
          if (confirm(`Cancel campaign ${c.name}? Its queued sends are dropped.`)) act("cancel");
        } }, "Cancel") : null,
      h("a", { href: `#/jobs?campaign=${encodeURIComponent(c.id)}` }, "Its jobs"));
    const plan = c.plan;
    const facts = [
      ["State", h("span", { id: "campaign-state" }, stateBadge(c.state), c.reason ? ` ${c.reason}` : "")],
      ["Id", c.id], ["Recipients", c.recipients.toLocaleString()], ["Run", c.run || "not yet"],
      ["Next run", when(c.nextRun) || "none"],
      ["From", c.spec.fromPhoneNos.join(", ")],
      ["Message", `${c.spec.message.type}${c.spec.message.body.name ? ` ${c.spec.message.body.name}` : ""}`],
      ["Estimated cost per run", c.estimatedCostPerRun === null ? "no PRICES set" : c.estimatedCostPerRun.toFixed(2)],
    ];
    fill(body,
      buttons,
      h("div", { class: "grid2" },
        h("section", { class: "card" }, h("dl", { class: "facts" },
          facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
        h("section", { class: "card" }, h("h2", {}, "Funnel"), funnelChart(c.funnel, c.recipients))),
      plan ? h("section", { class: "card", id: "plan" }, h("h2", {}, "Plan"), h("dl", { class: "facts" },
        h("dt", {}, "Starts"), h("dd", {}, when(plan.at)),
        h("dt", {}, "Rate"), h("dd", {}, `${plan.ratePerS} per second (limited by ${plan.limitedBy})`),
        h("dt", {}, "Estimated finish"), h("dd", {}, when(plan.estimatedFinish)),
        h("dt", {}, "New recipients"), h("dd", {}, plan.newRecipients),
        plan.budgetNow === null ? null : [h("dt", {}, "Messaging limit budget now"), h("dd", {}, plan.budgetNow)])) : null);
  });
}

// A spec to start from: the sandbox's order_shipped template, one hour from now; a CSV
// for it has the columns to,name,awb.
function exampleSpec() {
  const inAnHour = new Date(Date.now() + 3600 * 1000);
  inAnHour.setSeconds(0, 0);
  return {
    name: "Order updates",
    fromPhoneNos: me.numbers.slice(0, 1),
    message: {
      type: "template",
      body: {
        name: "order_shipped", language: "en",
        components: [{ type: "body", parameters: [
          { type: "text", text: "{{name}}" }, { type: "text", text: "{{awb}}" }] }],
      },
    },
    schedule: { at: inAnHour.toISOString() },
    throttlePerSecond: 10,
  };
}

function withoutAddresses(body) {
  // A send's body less to and fromPhoneNo (their own columns): the message itself.
  const { to: _to, fromPhoneNo: _from, ...message } = body;
  return message;
}

function newCampaignPage() {
  const spec = h("textarea", { id: "campaign-spec", rows: 30, spellcheck: "false" });
  spec.value = JSON.stringify(exampleSpec(), null, 2);
  const file = h("input", { type: "file", id: "campaign-csv", accept: ".csv,text/csv" });
  const preview = h("div", { id: "campaign-preview" });
  const create = h("button", { type: "button", id: "create-campaign", disabled: true }, "Create campaign");
  const read = async () => {
    let campaign;
    try { campaign = JSON.parse(spec.value); } catch (err) { throw new Error(`The spec is not JSON: ${err.message}`); }
    if (!file.files.length) throw new Error("Choose a CSV file of recipients (a 'to' column and one per variable).");
    return { campaign, audienceCsv: await file.files[0].text() };
  };
  const previewIt = async () => {
    create.disabled = true;
    try {
      const p = (await api("POST", "/v1/campaigns/preview", await read())).data;
      fill(preview,
        h("p", { id: "preview-summary" }, `${p.recipients} recipient${p.recipients === 1 ? "" : "s"} to send, ` +
          `${p.refused.length} row${p.refused.length === 1 ? "" : "s"} refused.`),
        h("h2", {}, "The first rows, as they will be sent"),
        table([["Line", "num"], ["To"], ["From"], ["Message"]], p.rows.map((r) => h("tr", {},
          h("td", { class: "num" }, r.line), h("td", { class: "mono" }, r.to),
          h("td", { class: "mono" }, r.fromPhoneNo), h("td", {}, h("pre", { class: "wrap" }, JSON.stringify(withoutAddresses(r.body)))))),
        "No row can be sent."),
        h("h2", {}, "Refused rows"),
        table([["Line", "num"], ["Why"]], p.refused.map((r) => h("tr", { "data-line": r.line },
          h("td", { class: "num" }, r.line), h("td", {}, r.reason))), "None."));
      create.disabled = p.recipients === 0;
    } catch (err) {
      fill(preview, h("p", { class: "error", id: "preview-error" }, err.message));
    }
  };
  create.addEventListener("click", async () => {
    try {
      const made = (await api("POST", "/v1/campaigns", await read())).data;
      flash(`Created with ${made.recipients} recipients.`);
      location.hash = `#/campaigns/${made.campaignId}`;
    } catch (err) { failed(err); }
  });
  show(h("h1", {}, "New campaign"),
    h("div", { class: "grid2" },
      h("section", { class: "card" }, h("label", {}, "Campaign spec (JSON)", spec)),
      h("section", { class: "card" },
        h("label", {}, "Audience (CSV: a to column, and one column per {{variable}})", file),
        h("div", { class: "actions" },
          h("button", { type: "button", id: "preview", class: "secondary", onclick: previewIt }, "Preview"),
          create),
        preview)));
}

// --- dead letters ---------------------------------------------------------------------

function dlqPage() {
  const body = h("div", { id: "dlq" }, h("p", { class: "muted" }, "Loading…"));
  const replay = async (what) => {
    try {
      const done = (await api("POST", "/v1/dlq/replay", what)).data.replayed;
      const n = Object.keys(done).length;
      flash(`Replayed ${n} job${n === 1 ? "" : "s"}.`);
      dlqPage();
    } catch (err) { failed(err); }
  };
  show(h("h1", {}, "Dead letters"),
    h("p", { class: "muted" }, "Jobs that ran out of attempts. A replay queues a new job " +
      "with the same message (the dead one keeps its history and points to it)."),
    h("div", { class: "actions" }, h("button", {
      type: "button", id: "replay-all", class: "secondary",
      onclick: () => { if (confirm("Replay every dead letter?")) replay({ all: true }); },
    }, "Replay all")), body);
  poll(async () => {
    const dead = (await api("GET", "/v1/dlq?limit=200")).data;
    fill(body, table(
      [["Job"], ["To"], ["From"], ["Type"], ["Attempts", "num"], ["Error"], ["Died"], [""]],
      dead.map((job) => h("tr", { "data-job": job.id },
        h("td", { class: "mono" }, h("a", { href: `#/jobs/${job.id}` }, job.id)),
        h("td", { class: "mono" }, job.to), h("td", { class: "mono" }, job.fromPhoneNo),
        h("td", {}, job.type), h("td", { class: "num" }, job.attempts),
        h("td", {}, job.error ? `${job.error.code ?? ""} ${job.error.message || ""}` : ""),
        h("td", {}, when(job.times.dead)),
        h("td", {}, h("button", {
          type: "button", class: "secondary replay", onclick: () => replay({ id: job.id }),
        }, "Replay")))),
      "No dead letters."));
  });
}

// --- routing --------------------------------------------------------------------------

function route() {
  stopPolling();
  if (me === null) { signInPage(); return; }
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", parts.length > 0 && link.getAttribute("href") === `#/${parts[0]}`);
  }
  const page = parts[0] || (can("read") ? "overview" : "campaigns");
  const needs = { overview: "read", jobs: "read", campaigns: "campaigns", dlq: "admin" }[page];
  if (!needs || !can(needs)) {
    show(h("h1", {}, "Not available"),
      h("p", {}, needs ? `This token lacks the '${needs}' scope.` : "No such page."));
    return;
  }
  if (page === "overview") overviewPage();
  else if (page === "jobs" && parts[1]) jobPage(parts[1]);
  else if (page === "jobs") jobsPage(params);
  else if (page === "campaigns" && parts[1] === "new") newCampaignPage();
  else if (page === "campaigns" && parts[1]) campaignPage(parts[1]);
  else if (page === "campaigns") campaignsPage();
  else dlqPage();
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", route);
  if (sessionStorage.getItem(TOKEN_KEY)) {
    try { await loadMe(); } catch (err) { signOut(err.message); return; }
  }
  route();
}

start();
