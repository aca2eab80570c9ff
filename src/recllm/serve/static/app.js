// The page at /: plain JavaScript over the service's JSON routes (no framework, no build).
// Data from the service is only ever inserted as text (textContent), never as HTML.
"use strict";

const state = {
  info: null, // what /readyz says the service serves
  userId: null, // the known user shown, or null when anonymous
  anonymous: [], // the anonymous visitor's history: {item_id, title, rating}, oldest first
  generation: 0, // bumped whenever who is shown changes; late answers for an older one are dropped
};

const $ = (id) => document.getElementById(id);

// -- talking to the service ----------------------------------------------------------------

class ServiceError extends Error {}

async function api(path, body) {
  const headers = {};
  const key = $("api-key").value.trim();
  if (key) headers["x-api-key"] = key; // requests naming a user need it when users are protected
  const options = body === undefined ? { headers } : {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (_) {
    throw new ServiceError(
      "The service did not answer. Is `recllm serve` still running at " + location.host + "?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (response.status === 401 && !$("key-box").hidden) {
    throw new ServiceError(key ? "The service refused this API key." :
      "This service answers questions about a known user only with its API key: enter it above.");
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
    throw new ServiceError(detail || "the service answered " + response.status);
  }
  return data;
}

function showError(error) {
  const box = $("error");
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function say(message) {
  $("status").textContent = message;
}

// Run an action from a control: clear the old error, show a new one as plain text.
async function guarded(action) {
  clearError();
  try {
    if (state.info === null && action !== start) await start(); // the service was down at load
    await action();
  } catch (error) {
    showError(error);
  }
}

// -- small DOM helpers ---------------------------------------------------------------------

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function stars(rating) {
  if (rating === null || rating === undefined) return state.info.rating_max ? "no rating" : "";
  return "★".repeat(Math.round(rating)) + " " + rating;
}

function ratingOptions(select) {
  select.replaceChildren(el("option", { value: "" }, "no rating"));
  const top = state.info && state.info.rating_max;
  if (!top) return;
  for (let r = Math.round(top); r >= 1; r--) {
    select.append(el("option", { value: r }, r + " star" + (r > 1 ? "s" : "")));
  }
}

function chosenRating(select) {
  return select && select.value ? Number(select.value) : null;
}

function verb() {
  return state.info && String(state.info.dataset || "").startsWith("ml") ? "Watched" : "Bought";
}

// Up/Down arrows move between a search box and the buttons of its result list.
function arrowKeys(input, list) {
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      const first = list.querySelector("button");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    } else if (event.key === "Escape") {
      list.replaceChildren();
    }
  });
  list.addEventListener("keydown", (event) => {
    const buttons = [...list.querySelectorAll("li > button:first-of-type")];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    if (event.key === "ArrowDown" && at + 1 < buttons.length) {
      event.preventDefault();
      buttons[at + 1].focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      (at > 0 ? buttons[at - 1] : input).focus();
    } else if (event.key === "Escape") {
      input.focus();
      list.replaceChildren();
    }
  });
}

// -- who: a known user or an anonymous history ----------------------------------------------

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function who() {
  if (state.userId !== null) return { user_id: state.userId };
  if (state.anonymous.length === 0) return null;
  return {
    history: state.anonymous.map((h) => (h.rating === null ? h.item_id : { item_id: h.item_id, rating: h.rating })),
  };
}

async function findUsers() {
  const prefix = $("user-id").value.trim();
  const list = $("user-matches");
  if (!prefix || prefix === state.userId) {
    list.replaceChildren();
    return;
  }
  const found = await api("v1/users?limit=8&prefix=" + encodeURIComponent(prefix));
  if ($("user-id").value.trim() !== prefix || prefix === state.userId) {
    list.replaceChildren(); // typed on meanwhile, or this user was just chosen
    return;
  }
  if (found.users.length === 0) {
    list.replaceChildren(el("li", { class: "none" }, "No known user id starts with “" + prefix + "”."));
    return;
  }
  list.replaceChildren(...found.users.map((id) => el("li", {},
    el("button", { type: "button", "data-user-id": id, onclick: () => guarded(() => chooseUser(id)) },
      "User " + id))));
}

async function chooseUser(id) {
  $("user-id").value = id;
  $("user-matches").replaceChildren();
  state.userId = id;
  state.anonymous = [];
  try {
    await refresh();
  } catch (error) {
    state.userId = null; // unknown id or service down: show nobody rather than a stale list
    $("history").replaceChildren();
    $("recs").replaceChildren();
    $("recs-summary").textContent = "";
    $("history-summary").textContent = "Choose a user above.";
    throw error;
  }
}

async function findTitles() {
  const query = $("title-q").value.trim();
  const list = $("title-matches");
  if (query.length < 2) {
    list.replaceChildren();
    return;
  }
  const found = await api("v1/items?limit=8&q=" + encodeURIComponent(query));
  if ($("title-q").value.trim() !== query) return; // the user typed on meanwhile
  if (found.items.length === 0) {
    list.replaceChildren(el("li", { class: "none" }, "No title matches “" + query + "”."));
    return;
  }
  list.replaceChildren(...found.items.map((item) => {
    const details = [item.year, item.genres.slice(-2).join(", ")].filter(Boolean).join(" · ");
    return el("li", {},
      el("button", {
        type: "button",
        "data-item-id": item.item_id,
        "aria-label": "Add " + item.title + " to the history",
        onclick: () => guarded(() => addToHistory(item, chosenRating($("add-rating")))),
      }, "Add"),
      " ", el("span", { class: "title" }, item.title),
      details ? el("span", { class: "muted" }, " (" + details + ")") : null);
  }));
}

async function addToHistory(item, rating) {
  if (mode() === "user") {
    if (state.userId === null) throw new ServiceError("Choose a user first, or switch to an anonymous visitor.");
    await api("v1/events", { user_id: state.userId, item_id: item.item_id, rating: rating });
    say("Recorded for user " + state.userId + ": " + item.title + (rating ? " (" + rating + " stars)" : "") + ".");
  } else {
    state.anonymous.push({ item_id: item.item_id, title: item.title, rating: rating });
    say("Added to the anonymous history: " + item.title + ".");
  }
  await refresh();
}

function setMode(value) {
  state.userId = null;
  state.anonymous = [];
  const known = value === "user";
  for (const id of ["user-form", "user-hint", "user-matches"]) $(id).hidden = !known;
  $("user-id").value = "";
  $("user-matches").replaceChildren();
  guarded(refresh); // an old error (say, an unknown user) goes with the old mode
}

// -- history and recommendations ------------------------------------------------------------

async function refresh() {
  const generation = ++state.generation;
  $("ask-result").replaceChildren();
  await showHistory(generation);
  await showRecommendations(generation);
}

async function showHistory(generation) {
  const list = $("history");
  if (state.userId !== null) {
    const history = await api("v1/users/" + encodeURIComponent(state.userId) + "/history?limit=10");
    if (generation !== state.generation) return;
    $("history-summary").textContent = "User " + history.user_id + ": " + history.length +
      " items; the " + history.items.length + " most recent, newest first.";
    list.replaceChildren(...history.items.map((h) => el("li", { "data-item-id": h.item_id },
      el("span", { class: "title" }, h.title), " ", el("span", { class: "muted" }, stars(h.rating)))));
    return;
  }
  if (state.anonymous.length === 0) {
    $("history-summary").textContent = mode() === "user"
      ? "Choose a user above."
      : "The anonymous history is empty: add titles with the search above.";
    list.replaceChildren();
    return;
  }
  $("history-summary").textContent = "Anonymous visitor: " + state.anonymous.length +
    " items, newest first (kept in this page only).";
  list.replaceChildren(...state.anonymous.map((h, index) => el("li", { "data-item-id": h.item_id },
    el("span", { class: "title" }, h.title), " ", el("span", { class: "muted" }, stars(h.rating)), " ",
    el("button", {
      type: "button",
      class: "small",
      "aria-label": "Remove " + h.title + " from the history",
      onclick: () => guarded(async () => {
        state.anonymous.splice(index, 1);
        await refresh();
      }),
    }, "Remove"))).reverse());
}

async function showRecommendations(generation) {
  const list = $("recs");
  const target = who();
  if (target === null) {
    $("recs-summary").textContent = "";
    list.replaceChildren();
    return;
  }
  $("recs-summary").textContent = "Ranking the whole catalogue…";
  const k = Number($("k").value);
  const ranked = await api("v1/recommend", { ...target, k: k });
  if (generation !== state.generation) return;
  $("recs-summary").textContent = "Top " + ranked.items.length + " of " + state.info.items +
    " items, with the reason for each" + (ranked.notes.length ? " (" + ranked.notes.join("; ") + ")" : "") + ".";
  const cards = ranked.items.map((item, rank) => recommendationCard(item, rank + 1));
  list.replaceChildren(...cards);
  // Reasons one at a time, top first: each is written and checked on the server.
  for (const [index, item] of ranked.items.entries()) {
    let reason;
    try {
      reason = await api("v1/explain", { ...target, item_id: item.item_id });
    } catch (error) {
      reason = { error: error.message };
    }
    if (generation !== state.generation) return;
    fillReason(cards[index], reason);
  }
}

function recommendationCard(item, rank) {
  const rating = el("select", { "aria-label": "Rating for " + item.title });
  ratingOptions(rating);
  const card = el("li", { class: "card", "data-item-id": item.item_id },
    el("div", { class: "card-head" },
      el("span", { class: "rank" }, rank + "."), " ",
      el("span", { class: "title" }, item.title), " ",
      el("span", { class: "score", title: "the model's score (higher ranks first)" }, "score " + item.score.toFixed(2)),
      " ", el("span", { class: "badge pending" }, "checking…"),
      el("span", { class: "actions" },
        state.info.rating_max ? rating : null,
        el("button", {
          type: "button",
          class: "record",
          "aria-label": verb() + ": record " + item.title + " in the history",
          onclick: () => guarded(() => addToHistory(item, chosenRating(rating))),
        }, verb()))),
    el("p", { class: "reason" }, "Writing the reason…"));
  return card;
}

function fillReason(card, reason) {
  const text = card.querySelector(".reason");
  const badge = card.querySelector(".badge");
  if (reason.error) {
    text.textContent = "No reason: " + reason.error;
    badge.replaceWith(el("span", { class: "badge no" }, "no reason"));
    return;
  }
  text.textContent = reason.text;
  const facts = reason.claims.map((c) => (c.verified ? "✓ " : "✗ ") + describeClaim(c)).join("\n");
  badge.replaceWith(reason.verified
    ? el("span", { class: "badge ok", title: "Checked against the data:\n" + facts }, "✓ verified")
    : el("span", { class: "badge no", title: "Not every claim holds:\n" + facts }, "not verified"));
  text.after(factsOf(reason));
}

function factsOf(reason) {
  const source = reason.source === "generator" ? "written by the explanation generator" : "built from the facts (template)";
  return el("details", { class: "facts" },
    el("summary", {}, "Facts it rests on (" + reason.claims.length + ")"),
    el("ul", {}, reason.claims.map((claim) => el("li", { class: claim.verified ? "holds" : "fails" },
      (claim.verified ? "✓ " : "✗ ") + describeClaim(claim)))),
    el("p", { class: "muted" }, "The reason was " + source + "."));
}

function describeClaim(c) {
  const last = c.window ? "the last " + c.window : "the history";
  switch (c.kind) {
    case "history_item": return "“" + c.title + "” is in the history";
    case "rating": return "“" + c.title + "” was rated " + c.rating + " stars";
    case "genre_count": return c.count + " of " + last + " are " + c.genre;
    case "liked_count": return c.count + " of " + last + " were rated 4 stars or more";
    case "item_genre": return "the item is " + c.genre;
    case "item_year": return "the item is from " + c.year;
    case "item_feature": return "reviews of the item mention " + c.feature;
    default: return c.kind + ": " + JSON.stringify(c);
  }
}

// -- ask in words ---------------------------------------------------------------------------

async function ask(text) {
  const target = who();
  if (target === null) throw new ServiceError("Choose a user or add a title first: answers are personal.");
  if (!state.info.router) throw new ServiceError("This bundle has no router, so it cannot read queries in words.");
  const box = $("ask-result");
  box.replaceChildren(el("p", {}, "Routing the query…"));
  const answer = await api("v1/ask", { ...target, text: text, k: Number($("k").value) });
  box.replaceChildren(...renderAnswer(answer));
}

function renderAnswer(answer) {
  const s = answer.slots;
  const item = s.item
    ? "“" + s.item.mention + "” → " + (s.item.title ? s.item.title + " (" + s.item.status.replace("_", " ") + ")" : "no catalogue match")
    : "none";
  const years = s.year_from || s.year_to ? (s.year_from || "…") + "–" + (s.year_to || "…") : "any";
  const route = el("dl", { class: "route" },
    el("dt", {}, "Intent"), el("dd", {}, el("code", { id: "ask-intent" }, answer.intent),
      el("span", { class: "muted" }, " (confidence " + answer.confidence.toFixed(2) + ")")),
    el("dt", {}, "Title"), el("dd", { id: "slot-item" }, item),
    el("dt", {}, "Genres"), el("dd", { id: "slot-genre" }, s.genre.length ? s.genre.join(", ") : "any"),
    el("dt", {}, "Years"), el("dd", { id: "slot-years" }, years),
    el("dt", {}, "How many"), el("dd", { id: "slot-k" }, s.k === null ? "not said (" + $("k").value + ")" : String(s.k)));
  const parts = [el("h3", {}, "What the router read"), route];
  if (answer.notes.length) parts.push(el("ul", { class: "notes" }, answer.notes.map((n) => el("li", {}, n))));
  if (answer.intent === "out_of_scope") {
    parts.push(el("p", { class: "plain" }, "This query is outside what the service does (recommend or explain), so nothing was ranked."));
    return parts;
  }
  const reasons = new Map(answer.explanations.map((e) => [e.item_id, e]));
  const cards = answer.items.map((ranked, index) => {
    const card = el("li", { class: "card", "data-item-id": ranked.item_id },
      el("div", { class: "card-head" },
        el("span", { class: "rank" }, index + 1 + "."), " ", el("span", { class: "title" }, ranked.title), " ",
        el("span", { class: "score" }, "score " + ranked.score.toFixed(2)),
        reasons.has(ranked.item_id) ? [" ", el("span", { class: "badge pending" }, "")] : null),
      el("p", { class: "reason" }, reasons.has(ranked.item_id) ? "" : "(no reason asked for)"));
    if (reasons.has(ranked.item_id)) fillReason(card, reasons.get(ranked.item_id));
    return card;
  });
  for (const reason of answer.explanations) {
    if (answer.items.some((i) => i.item_id === reason.item_id)) continue;
    const card = el("li", { class: "card", "data-item-id": reason.item_id },
      el("div", { class: "card-head" }, el("span", { class: "title" }, reason.title), " ",
        el("span", { class: "badge pending" }, "")),
      el("p", { class: "reason" }, ""));
    fillReason(card, reason);
    cards.push(card);
  }
  parts.push(el("h3", {}, "Answer"));
  parts.push(cards.length ? el("ol", { id: "ask-items", class: "cards" }, cards)
    : el("p", { class: "plain" }, "Nothing to show for this query (see the notes above)."));
  return parts;
}

// -- start ----------------------------------------------------------------------------------

async function start() {
  const info = await api("readyz");
  state.info = info;
  const users = info.users ? info.users.toLocaleString() + " known users, " : "";
  $("about").textContent = "Serving " + info.dataset + ": " + info.items.toLocaleString() + " items, " + users +
    (info.router ? "a query router" : "no query router") + " and " +
    (info.explainer ? "an explanation generator" : "reasons from the facts template") + ".";
  ratingOptions($("add-rating"));
  $("add-rating-box").hidden = !info.rating_max;
  $("key-box").hidden = $("key-hint").hidden = !info.protected_users;
}

function wire() {
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => setMode(radio.value));
  }
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("user-id").value.trim();
    if (id) guarded(() => chooseUser(id));
  });
  $("user-id").addEventListener("input", debounce(() => guarded(findUsers), 200));
  $("title-q").addEventListener("input", debounce(() => guarded(findTitles), 200));
  arrowKeys($("user-id"), $("user-matches"));
  arrowKeys($("title-q"), $("title-matches"));
  $("k").addEventListener("change", () => guarded(refresh));
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("ask-text").value.trim();
    if (text) guarded(() => ask(text));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wire();
  guarded(start);
});
