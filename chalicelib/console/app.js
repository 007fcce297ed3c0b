// The solana-exec console: plain DOM, the public REST API and one WebSocket. No build step.
"use strict";

(() => {
  // "/" locally, "/api/" on AWS: every REST call is relative to the page.
  const BASE = location.pathname.replace(/[^/]*$/, "");
  const WS_URL = document.querySelector('meta[name="ws-url"]').content || `ws://${location.hostname}:8001`;
  const TERMINAL = new Set(["confirmed", "failed", "cancelled", "expired"]);
  const POLL_MS = 3000;
  const KEY_STORE = "solexec.apiKey";
  let apiKey = localStorage.getItem(KEY_STORE) || "";

  const $ = (selector, root = document) => root.querySelector(selector);

  // h("td", {class: "x"}, "text", otherNode): a small element builder; text is never parsed as HTML.
  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  async function api(method, path, body) {
    const init = { method, headers: { "x-api-key": apiKey } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      const resp = await fetch(BASE + path, init);
      const text = await resp.text();
      let data = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch {
        data = { message: text };
      }
      if (resp.status === 401) askForKey("the engine refused this key (401): enter a valid one");
      return { status: resp.status, ok: resp.ok, data };
    } catch (err) {
      return { status: 0, ok: false, data: { error: "network", message: `cannot reach the engine: ${err}` } };
    }
  }

  // -- formatting ---------------------------------------------------------------------

  const short = (id) => String(id).slice(0, 8);

  // Amounts are decimal strings; trim long fractions for the eye without going through floats.
  function amt(value, places = 6) {
    if (value === undefined || value === null) return "";
    const [whole, frac = ""] = String(value).split(".");
    const kept = frac.slice(0, places).replace(/0+$/, "");
    return kept ? `${whole}.${kept}` : whole;
  }

  const pct = (fraction, digits = 4) => `${(Number(fraction) * 100).toFixed(digits).replace(/\.?0+$/, "")} %`;

  function clock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso || "";
    const two = (n) => String(n).padStart(2, "0");
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
  }

  // -- followed orders ----------------------------------------------------------------

  const orders = new Map(); // orderId -> {id, meta, events: Map(seq -> event), card}

  function latest(order) {
    let best = null;
    for (const ev of order.events.values()) if (!best || ev.seq > best.seq) best = ev;
    return best;
  }

  const statusOf = (order) => (latest(order) || {}).status || order.meta.status || "pending";
  const isDone = (order) => order.events.size > 0 && TERMINAL.has(latest(order).status);

  function follow(orderId, meta = {}) {
    let order = orders.get(orderId);
    if (!order) {
      order = { id: orderId, meta: { ...meta }, events: new Map(), card: newCard(orderId) };
      orders.set(orderId, order);
      $("#no-orders").hidden = true;
      $("#cards").prepend(order.card);
      render(order);
    }
    socket.subscribe(orderId);
    return order;
  }

  function onStatus(ev) {
    const order = orders.get(ev.orderId);
    if (!order || order.events.has(ev.seq)) return; // not ours, or a repeat after a reconnect
    order.events.set(ev.seq, ev);
    if (ev.status === "pending") Object.assign(order.meta, { tokenIn: ev.tokenIn, tokenOut: ev.tokenOut, amount: ev.amount, slippage: ev.slippage, orderType: ev.orderType });
    render(order);
    if (TERMINAL.has(ev.status)) {
      refreshOrders();
      refreshDlq();
    }
  }

  function newCard(orderId) {
    const card = $("#card-template").content.firstElementChild.cloneNode(true);
    card.dataset.orderId = orderId;
    const oid = $(".oid", card);
    oid.textContent = short(orderId);
    oid.title = orderId;
    const cancel = $(".cancel", card);
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      const { ok, data } = await api("DELETE", `order/${encodeURIComponent(orderId)}`);
      if (!ok) cancel.title = (data && data.message) || "not cancelled";
      cancel.disabled = false;
    });
    return card;
  }

  function render(order) {
    const { card, meta } = order;
    const status = statusOf(order);
    card.dataset.status = status;
    $(".what", card).textContent = meta.tokenIn ? `${amt(meta.amount)} ${meta.tokenIn} → ${meta.tokenOut}` : "";
    const pill = $(".status", card);
    pill.textContent = status;
    pill.className = `status s-${status}`;
    $(".cancel", card).hidden = !(["limit", "sniper"].includes(meta.orderType || meta.type) && ["pending", "waiting"].includes(status));

    const events = [...order.events.values()].sort((a, b) => a.seq - b.seq);
    const start = events.length ? new Date(events[0].timestamp).getTime() : 0;
    $(".timeline", card).replaceChildren(
      ...events.map((ev) => {
        const since = new Date(ev.timestamp).getTime() - start;
        return h(
          "li",
          { class: `ev ev-${ev.status}`, "data-status": ev.status, "data-seq": ev.seq },
          h("span", { class: "when" }, h("time", { datetime: ev.timestamp }, clock(ev.timestamp)), ev.seq === events[0].seq ? "" : h("small", {}, `+${since} ms`)),
          h("b", {}, ev.status),
          h("div", { class: "detail" }, detail(ev, meta)),
          ev.status === "routing" ? quotesTable(ev, meta.tokenOut || "") : null,
        );
      }),
    );
    $(".outcome", card).replaceChildren(outcome(events[events.length - 1], meta) || "");
    updateFollowing();
  }

  function detail(ev, meta) {
    const out = meta.tokenOut || "";
    switch (ev.status) {
      case "pending":
        return `${amt(ev.amount)} ${ev.tokenIn} → ${ev.tokenOut}, slippage ${pct(ev.slippage, 2)}`;
      case "routing":
        return routing(ev);
      case "building":
        return h("span", {}, "slippage floor ", h("b", { class: "min-out" }, `minAmountOut ${amt(ev.minAmountOut)} ${out}`));
      case "submitted":
        return ev.txHash ? h("span", {}, `on ${ev.dex || "?"}, tx `, h("code", { title: ev.txHash }, short(ev.txHash) + "…")) : "";
      case "confirmed":
        return h("span", {}, `${amt(ev.amountOut)} ${out} at ${amt(ev.executedPrice)} on ${ev.dex}`);
      case "failed":
        return h("span", { class: "err" }, `${ev.error} (after ${ev.attempts} attempt${ev.attempts === 1 ? "" : "s"})`);
      case "waiting":
        return triggerText(ev, meta);
      case "cancelled":
      case "expired":
        return h("span", { class: "err" }, ev.reason || ev.status);
      default:
        return "";
    }
  }

  // A waiting order's trigger: limit vs the price it waits for, or the pool a sniper waits for; time left.
  function triggerText(ev, meta) {
    const t = ev.trigger || {};
    const left = ev.expiresAt ? Math.max(0, Math.round((new Date(ev.expiresAt).getTime() - Date.now()) / 1000)) : null;
    const until = left === null ? "" : ` · expires ${clock(ev.expiresAt)} (${left} s left)`;
    if (t.limitPrice) return h("span", { class: "trigger" }, `until ${meta.tokenOut || ""} per ${meta.tokenIn || ""} ≥ ${t.limitPrice}${until}`);
    if (t.maxPrice) return h("span", { class: "trigger" }, `until a pool exists, then at most ${t.maxPrice} ${meta.tokenIn || ""} each${until}`);
    return until;
  }

  // The routing decision: the chosen venue and the route's legs, then every venue's quote.
  function routing(ev) {
    const legs = (ev.route || []).map((leg) => `${leg.dex} ${amt(leg.percent, 2)} % (${amt(leg.amountIn)} → ${amt(leg.amountOut)})`);
    return h(
      "div",
      { class: "routing" },
      ev.attempt > 1 ? h("p", { class: "retry" }, `attempt ${ev.attempt}`, ev.error ? ` — previous: ${ev.error}` : "") : null,
      h("p", { class: "route" }, "chose ", h("b", { class: "dex" }, ev.dex || "?"), legs.length ? `: ${legs.join(" + ")}` : ""),
    );
  }

  function quotesTable(ev, out) {
    const used = new Set((ev.route || []).map((leg) => leg.dex).concat(ev.dex));
    const rows = (ev.quotes || []).map((q) =>
      q.error
        ? h("tr", { class: "quote-error" }, h("td", {}, q.dex), h("td", { colspan: 4, class: "err" }, q.error))
        : h(
            "tr",
            { class: used.has(q.dex) ? "chosen" : "" },
            h("td", {}, q.dex),
            h("td", { class: "num" }, amt(q.amountOut)),
            h("td", { class: "num" }, amt(q.price)),
            h("td", { class: "num" }, amt(q.fee, 9)),
            h("td", { class: "num" }, pct(q.priceImpact)),
          ),
    );
    const head = ["venue", `out (${out})`, "price", "fee", "impact"].map((t) => h("th", {}, t));
    return h("table", { class: "quotes" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows));
  }

  function outcome(last, meta) {
    if (!last) return null;
    if (last.status === "confirmed") {
      return h(
        "span",
        { class: "ok" },
        `✔ ${last.amountOut} ${meta.tokenOut || ""} at ${last.executedPrice} on ${last.dex} · tx `, // exact, as settled
        h("code", { class: "tx", title: last.txHash }, last.txHash),
      );
    }
    if (last.status === "failed") return h("span", { class: "err" }, `✘ failed after ${last.attempts} attempts: ${last.error}`);
    if (last.status === "cancelled" || last.status === "expired") return h("span", { class: "err" }, `✘ ${last.status}: never executed`);
    return null;
  }

  function updateFollowing() {
    const counts = { waiting: 0, working: 0, done: 0 };
    for (const order of orders.values()) {
      const s = statusOf(order);
      if (TERMINAL.has(s)) counts.done += 1;
      else if (s === "pending") counts.waiting += 1;
      else counts.working += 1;
    }
    $("#following").textContent = orders.size
      ? `${orders.size} followed · ${counts.waiting} queued · ${counts.working} executing · ${counts.done} done`
      : "";
  }

  // -- the one WebSocket: reconnects by itself, re-subscribes, repeats dropped by seq --

  const socket = {
    ws: null,
    delay: 500,
    reconnects: 0,
    open() {
      setWsState("connecting");
      // A browser cannot set headers on a WebSocket: the key goes in the query, as the contract allows.
      const ws = new WebSocket(`${WS_URL}${WS_URL.includes("?") ? "&" : "?"}apiKey=${encodeURIComponent(apiKey)}`);
      this.ws = ws;
      ws.onopen = () => {
        this.delay = 500;
        setWsState("live");
        // The server replays each order from `pending`; onStatus drops what we already have.
        for (const order of orders.values()) if (!isDone(order)) this.send(order.id);
      };
      ws.onmessage = (msg) => {
        let frame;
        try {
          frame = JSON.parse(msg.data);
        } catch {
          return;
        }
        if (frame.type === "status") onStatus(frame);
        else if (frame.type === "error") notice(`WebSocket: ${frame.error}: ${frame.message}`);
      };
      ws.onclose = () => {
        if (this.ws !== ws || !apiKey) return;
        this.reconnects += 1;
        setWsState(`reconnecting in ${(this.delay / 1000).toFixed(1)} s`);
        setTimeout(() => this.open(), this.delay);
        this.delay = Math.min(this.delay * 2, 5000);
      };
    },
    subscribe(orderId) {
      this.send(orderId); // if the socket is not open, onopen subscribes every unfinished order
    },
    send(orderId) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ action: "subscribe", orderId }));
      }
    },
  };

  function setWsState(text) {
    const pill = $("#ws-state");
    pill.textContent = text === "live" ? "live" : text;
    pill.dataset.state = text === "live" ? "live" : "down";
    pill.title = WS_URL;
  }

  let noticeTimer = null;
  function notice(text) {
    const el = $("#dlq-note");
    el.textContent = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (el.textContent = ""), 8000);
  }

  // -- the order form -----------------------------------------------------------------

  const form = $("#order-form");

  async function loadTokens() {
    const { ok, data } = await api("GET", "tokens");
    if (!ok) return showError(data);
    for (const [name, preset] of [["tokenIn", "SOL"], ["tokenOut", "USDC"]]) {
      const select = form.elements[name];
      select.replaceChildren(...data.map((t) => h("option", { value: t.symbol, title: t.mint, selected: t.symbol === preset }, t.symbol)));
    }
  }

  function clearErrors() {
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showError(body) {
    const field = (body && body.field) || "_form";
    const slot = form.querySelector(`[data-error-for="${field}"]`) || form.querySelector('[data-error-for="_form"]');
    slot.textContent = (body && body.message) || "the engine refused the request";
    const input = form.elements[field];
    if (input) input.setAttribute("aria-invalid", "true");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const f = form.elements;
    const body = { tokenIn: f.tokenIn.value, tokenOut: f.tokenOut.value, amount: f.amount.value.trim(), slippage: f.slippage.value.trim() };
    if (f.type.value !== "market") {
      body.type = f.type.value;
      body[f.type.value === "limit" ? "limitPrice" : "maxPrice"] = f.price.value.trim();
      if (f.expiresInS.value.trim()) body.expiresInS = Number(f.expiresInS.value.trim());
      if (f.type.value === "sniper" && f.mint.value.trim()) body.tokenOut = f.mint.value.trim();
    }
    const count = Math.max(1, Math.min(100, parseInt(f.count.value, 10) || 1));
    f.submit.disabled = true;
    try {
      const results = await Promise.all(Array.from({ length: count }, () => api("POST", "order", body)));
      const refused = results.find((r) => !r.ok);
      if (refused) showError(refused.data);
      for (const r of results) if (r.ok) follow(r.data.orderId, r.data);
    } finally {
      f.submit.disabled = false;
      refreshOrders();
    }
  });

  // -- recent orders ------------------------------------------------------------------

  async function refreshOrders() {
    const { ok, data } = await api("GET", "orders?limit=15");
    if (!ok) return;
    $("#recent tbody").replaceChildren(
      ...data.items.map((o) =>
        h(
          "tr",
          { "data-order-id": o.orderId, title: `${o.orderId} — click to follow`, onclick: () => follow(o.orderId, o) },
          h("td", {}, clock(o.createdAt)),
          h("td", { class: "nowrap" }, `${o.tokenIn}→${o.tokenOut}`),
          h("td", { class: "num" }, amt(o.amount)),
          h("td", {}, h("span", { class: `status s-${o.status}` }, o.status)),
        ),
      ),
    );
  }

  // -- dead letters and engine stats ----------------------------------------------------

  async function refreshDlq() {
    const [stats, failed] = await Promise.all([api("GET", "api/dlq/stats"), api("GET", "api/dlq/failed-orders?limit=20")]);
    $("#dlq").dataset.access = stats.status === 403 ? "forbidden" : "ok";
    if (stats.status === 403) {
      $("#dlq-stats").replaceChildren(h("dt", {}, "access"), h("dd", {}, "the dead letters need an admin key"));
      return;
    }
    if (stats.ok) {
      const s = stats.data;
      const reasons = Object.entries(s.byReason || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
      $("#dlq-stats").replaceChildren(
        ...dl({ "failure records": s.failureRecords, "messages in DLQ": s.messagesInDlq, "by reason": reasons, oldest: s.oldestFailure ? clock(s.oldestFailure) : "—" }),
      );
    }
    if (failed.ok) {
      $("#dlq-table tbody").replaceChildren(
        ...[...failed.data.items].sort((a, b) => String(b.failedAt).localeCompare(String(a.failedAt))).map((item) => {
          const o = item.originalOrder || {};
          return h(
            "tr",
            { "data-order-id": item.orderId, title: "click to follow", onclick: () => follow(item.orderId, o) },
            h("td", {}, clock(item.failedAt)),
            h("td", {}, h("code", { title: item.orderId }, short(item.orderId)), ` ${amt(o.amount)} ${o.tokenIn || ""} → ${o.tokenOut || ""}`),
            h("td", {}, item.failureReason),
            h("td", { class: "num" }, item.attemptsMade),
            h("td", { class: "err" }, item.lastError),
          );
        }),
      );
    }
  }

  function dl(entries) {
    return Object.entries(entries).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]);
  }

  async function refreshStats() {
    const { status, data } = await api("GET", "api/stats");
    const panel = $("#stats-panel");
    panel.hidden = status !== 200;
    if (status !== 200) return;
    const wins = data.venueWins || {};
    const lat = data.latencyMs || {};
    const ms = (x) => (x === undefined || x === null ? "—" : `${Math.round(x)} ms`);
    $("#stats").replaceChildren(
      ...dl({
        "queue depth": data.queueDepth,
        "in flight": data.inFlight,
        "DLQ depth": data.dlqDepth,
        "venue wins": `raydium ${wins.raydium ?? 0} · meteora ${wins.meteora ?? 0} · split ${wins.split ?? 0}`,
        latency: lat.count ? `p50 ${ms(lat.p50)} · p90 ${ms(lat.p90)} · p99 ${ms(lat.p99)} (${lat.count})` : "no orders yet",
      }),
    );
  }

  async function dlqAction(button, method, path, describe) {
    button.disabled = true;
    try {
      const { ok, status, data } = await api(method, path);
      notice(ok ? describe(data) : `${path}: ${status} ${(data && data.message) || ""}`);
      return { ok, status, data };
    } finally {
      button.disabled = false;
      refreshDlq();
    }
  }

  const summary = (data) => Object.entries(data || {}).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");

  $("#dlq-redrive").addEventListener("click", (e) => dlqAction(e.target, "POST", "api/dlq/redrive", (d) => `redrive: ${summary(d)}`));
  $("#dlq-clear-failed").addEventListener("click", (e) => dlqAction(e.target, "DELETE", "api/dlq/clear/failed", (d) => `purged: ${summary(d)}`));
  $("#dlq-clear").addEventListener("click", (e) => {
    if (window.confirm("Remove the DLQ messages AND the failure records?")) {
      dlqAction(e.target, "DELETE", "api/dlq/clear", (d) => `cleared: ${summary(d)}`);
    }
  });
  $("#test-failure").addEventListener("click", async (e) => {
    const { ok, status, data } = await dlqAction(e.target, "POST", "test/dlq", (d) => `test order ${short(d.orderId)} created: it fails every attempt`);
    if (ok) follow(data.orderId, { tokenIn: "SOL", tokenOut: "USDC", amount: "0.1" });
    if (status === 404) {
      e.target.hidden = true;
      notice("test endpoints are off on this stage");
    }
  });

  $("#orders-refresh").addEventListener("click", refreshOrders);
  $("#clear-done").addEventListener("click", () => {
    for (const [id, order] of orders) {
      if (isDone(order)) {
        order.card.remove();
        orders.delete(id);
      }
    }
    $("#no-orders").hidden = orders.size > 0;
    updateFollowing();
  });

  // -- start ----------------------------------------------------------------------------

  // -- the API key: asked for once, kept in this browser -----------------------------------

  const keyForm = $("#key-form");
  let started = false;

  function askForKey(reason) {
    apiKey = "";
    localStorage.removeItem(KEY_STORE);
    keyForm.hidden = false;
    $("#key-change").hidden = true;
    $("[data-error-for=apiKey]").textContent = reason || "";
    keyForm.elements.apiKey.focus();
    if (socket.ws) {
      const ws = socket.ws;
      socket.ws = null;
      ws.close();
    }
    setWsState("no key");
  }

  keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = keyForm.elements.apiKey.value.trim();
    if (!value) {
      $("[data-error-for=apiKey]").textContent = "enter your API key";
      return;
    }
    apiKey = value;
    localStorage.setItem(KEY_STORE, value);
    keyForm.elements.apiKey.value = "";
    keyForm.hidden = true;
    $("#key-change").hidden = false;
    start();
  });
  $("#key-change").addEventListener("click", () => askForKey(""));

  function start() {
    socket.open();
    loadTokens();
    refreshOrders();
    refreshDlq();
    refreshStats();
    if (started) return;
    started = true;
    setInterval(() => {
      if (!apiKey) return;
      refreshDlq();
      refreshStats();
    }, POLL_MS);
    setInterval(() => apiKey && refreshOrders(), 2 * POLL_MS);
  }

  window.solexec = { orders, socket, follow, base: BASE, wsUrl: WS_URL };
  if (apiKey) {
    $("#key-change").hidden = false;
    start();
  } else {
    askForKey("");
  }
})();
