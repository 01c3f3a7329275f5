/* kagami dashboard: plain JavaScript, no dependencies, nothing fetched
 * from anywhere but this kagami's admin listener.
 *
 * Views (in the URL fragment, so the back button and links work):
 *   #/                  totals, chart, endpoint table, recent results
 *   #/endpoint/NAME     the same, scoped to one endpoint
 *   #/result/ID         one result: master and shadow side by side
 *   #/noise, #/noise/NAME  learned noise and its evidence, every endpoint
 *                       or one
 * Data: /metrics (totals), /api/endpoints, /api/timeseries, /api/results,
 * /api/results/ID, /api/noise, polled every few seconds while the tab is
 * visible; /api/instances now and then: on a fleet's store it names the
 * instances (the header's select adds ?instance=NAME to the store's
 * queries), and under `kagami admin --db` it says no proxy runs here (no
 * live counters, no learned noise: the totals come from the store).
 * Everything from the API is put in the page as text (textContent), never
 * as markup. */
"use strict";

(() => {
  const POLL_MS = 3000;
  const INSTANCES_MS = 60000;  /* instances come and go rarely */
  /* name, seconds back (0: everything), chart bucket seconds */
  const RANGES = [
    ["15m", 900, 15], ["1h", 3600, 60], ["6h", 21600, 300],
    ["24h", 86400, 900], ["7d", 604800, 3600], ["all", 0, 3600],
  ];
  const MAX_ALIGN_D = 1500;   /* line-diff edit distance before giving up */
  const CONTEXT = 3;          /* unchanged lines kept around a change */

  const state = {
    range: sessionStorage.getItem("kagami.range") || "1h",
    token: sessionStorage.getItem("kagami.token") || "",
    instance: sessionStorage.getItem("kagami.instance") || "", /* "": the whole fleet */
    info: null,               /* last /api/instances answer */
    infoAt: 0,                /* when it came (performance.now()) */
    route: { view: "overview", endpoint: null, id: null },
    onlyDiffering: true,
    endpoints: null,          /* last /api/endpoints answer */
    series: null,             /* last /api/timeseries answer */
    results: [],              /* rows shown in the results table */
    nextBefore: null,         /* paging cursor of the oldest page shown */
    olderLoaded: false,       /* the user asked for older pages */
    result: null,             /* the result on screen */
    shadow: null,             /* which shadow the result view compares */
    seen: {},                 /* last answer text per panel: skip redraws */
    inflight: false,
    hover: -1,                /* chart bucket under the pointer */
  };

  /* --- small helpers ----------------------------------------------------- */

  const $ = (id) => document.getElementById(id);

  /* Builds an element: attrs (class, text, on*, others as attributes) and
   * children (nodes or strings, which become text). */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid == null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  const fmtInt = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));

  function fmtMs(ms) {
    if (ms == null || !isFinite(ms)) return "–";
    if (ms >= 10000) return (ms / 1000).toFixed(1) + " s";
    if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
    if (ms >= 100) return ms.toFixed(0) + " ms";
    if (ms >= 10) return ms.toFixed(1) + " ms";
    return ms.toFixed(2) + " ms";
  }

  function fmtPct(r) {
    if (r == null || !isFinite(r)) return "–";
    if (r === 0) return "0%";
    if (r < 0.001) return "<0.1%";
    return (r * 100).toFixed(r < 0.1 ? 1 : 0) + "%";
  }

  function fmtBytes(n) {
    if (n == null) return "–";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }

  function ago(ts) {
    const s = Math.max(0, Date.now() / 1000 - ts);
    if (s < 60) return Math.floor(s) + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return new Date(ts * 1000).toLocaleDateString();
  }

  function clockTime(ts, withDate) {
    const d = new Date(ts * 1000);
    const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    return withDate ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm : hm;
  }

  function rangeInfo() {
    return RANGES.find((r) => r[0] === state.range) || RANGES[1];
  }

  /* "GET /users/:id" -> [method span, path] */
  function endpointLabel(name) {
    const sp = name.indexOf(" ");
    if (sp < 0) return h("span", { class: "ep", text: name });
    return h("span", { class: "ep" }, h("span", { class: "method", text: name.slice(0, sp) }),
      name.slice(sp + 1));
  }

  function globToRegExp(glob) {
    const esc = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp("^" + esc + "$", "i");
  }

  function roleOf(b) { return b.role || "shadow"; }

  /* --- talking to kagami --------------------------------------------------- */

  class AuthError extends Error {}

  async function get(path) {
    const headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const r = await fetch(path, { headers, cache: "no-store" });
    if (r.status === 401) throw new AuthError("a token is required");
    const text = await r.text();
    if (!r.ok) {
      const e = new Error(text.trim() || r.status + " " + r.statusText);
      e.status = r.status;
      throw e;
    }
    return text;
  }

  /* A store query scoped to the instance chosen in the header (a fleet's
   * store only; the whole fleet when none is). */
  function scoped(path) {
    if (!state.instance) return path;
    return path + (path.includes("?") ? "&" : "?") + "instance=" + encodeURIComponent(state.instance);
  }

  /* Fetches JSON for a panel; null when the answer is the same text as last
   * time (nothing to redraw), unless force. */
  async function getJSON(path, key, force) {
    const text = await get(path);
    if (!force && key && state.seen[key] === text) return null;
    if (key) state.seen[key] = text;
    return JSON.parse(text);
  }

  function setStatus(kind, text) {
    const el = $("status");
    el.className = "status " + kind;
    el.textContent = text;
  }

  function banner(text) {
    const b = $("banner");
    b.hidden = !text;
    b.textContent = text || "";
  }

  function askToken() {
    const d = $("login");
    if (!d.open) {
      setStatus("error", "token required");
      d.showModal();
      $("login-token").focus();
    }
  }

  /* --- totals (from /metrics) ---------------------------------------------- */

  /* Prometheus text -> [{name, labels, value}] (samples only). */
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split("\n")) {
      if (!line || line[0] === "#") continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }

  function card(label, value, sub, alert) {
    return h("div", { class: "card" + (alert ? " alert" : "") },
      h("div", { class: "label", text: label }),
      h("div", { class: "value", text: value }),
      h("div", { class: "sub", text: sub || "\u00a0" }));
  }

  /* Without a proxy (kagami admin --db) there are no live counters: the
   * totals are the store's, over the time range (and instance) shown. */
  function renderStoreCards(data) {
    const [name, since] = rangeInfo();
    const scope = (since ? "in the last " + name : "in the store") +
      (state.instance ? " · " + state.instance : "");
    const names = state.info ? state.info.instances : [];
    $("cards").replaceChildren(
      card("Compared", fmtInt(data.compared), scope),
      card("Differing", fmtInt(data.differing), data.compared ? fmtPct(data.differing / data.compared) + " of compared" : "", data.differing > 0),
      card("Failed", fmtInt(data.errors), "master or shadow failed", data.errors > 0),
      card("Endpoints", fmtInt(data.endpoints.length), scope),
      names.length ? card("Instances", fmtInt(names.length), "writing to this store") : null);
  }

  function isLive() { return !state.info || state.info.live; }

  async function refreshCards() {
    const text = await get("/metrics");
    const samples = parseMetrics(text);
    const one = (name) => (samples.find((s) => s.name === name) || { value: 0 }).value;
    const roles = {};
    for (const s of samples) if (s.name === "kagami_backend_info") roles[s.labels.backend] = s.labels.role;
    let shadowErrors = 0;
    for (const s of samples)
      if (s.name === "kagami_backend_errors_total" && roles[s.labels.backend] !== "master")
        shadowErrors += s.value;
    const compared = one("kagami_compared_total");
    const differing = one("kagami_differing_total");
    const dropped = one("kagami_dropped_total") + one("kagami_results_dropped_total");
    $("cards").replaceChildren(
      card("Requests", fmtInt(one("kagami_requests_total")), fmtInt(one("kagami_shadowed_total")) + " shadowed"),
      card("Compared", fmtInt(compared), "since kagami started"),
      card("Differing", fmtInt(differing), compared ? fmtPct(differing / compared) + " of compared" : "", differing > 0),
      card("Shadow errors", fmtInt(shadowErrors), "failed shadow requests", shadowErrors > 0),
      card("Dropped", fmtInt(dropped), "over a limit, not compared", dropped > 0),
      card("Connections", fmtInt(one("kagami_connections_open")), "open now"));
  }

  /* --- endpoint table ------------------------------------------------------ */

  function latencyCell(b, slow) {
    if (!b) return "–";
    return h("div", { class: "lat" + (slow ? " slow" : "") },
      fmtMs(b.p50_ms), h("span", { class: "sub" }, " / "), fmtMs(b.p99_ms));
  }

  function endpointRow(ep) {
    const master = ep.backends.find((b) => roleOf(b) === "master");
    const shadows = ep.backends.filter((b) => roleOf(b) !== "master");
    const rate = ep.difference_rate || 0;
    const bar = h("div", { class: "bar" }, h("span"));
    bar.firstChild.style.width = Math.min(100, rate * 100).toFixed(1) + "%";
    const shown = (ep.top_differences || []).slice(0, 4);
    const tops = shown.map((t) =>
      h("span", { class: "chip", title: t.location + " (" + t.count + " results)" }, t.location, h("b", { text: t.count })));
    /* the API counts every distinct location; only the top ones are listed */
    const more = (ep.locations || 0) - shown.length;
    if (more > 0) tops.push(h("span", { class: "sub more", title: "see the endpoint's results for every location" }, "+" + fmtInt(more) + " more"));
    let flag;
    const few = shadows.every((b) => (b.samples || 0) < 20) || (master && master.samples < 20);
    if (ep.regression) {
      const worst = Math.max(...shadows.map((b) => b.p90_ratio || 0));
      flag = h("span", { class: "flag bad", title: "shadow p90 over " + state.endpoints.regression_factor + "× the master's" },
        "slower" + (worst ? " ×" + worst.toFixed(1) : ""));
    } else if (few) {
      flag = h("span", { class: "flag muted", title: "fewer than 20 samples" }, "few samples");
    } else {
      flag = h("span", { class: "flag ok" }, "ok");
    }
    const selected = state.route.endpoint === ep.endpoint;
    return h("tr", {
      class: "link" + (selected ? " selected" : ""),
      "data-endpoint": ep.endpoint,
      onclick: () => { location.hash = selected ? "#/" : "#/endpoint/" + encodeURIComponent(ep.endpoint); },
    },
    h("td", null, endpointLabel(ep.endpoint)),
    h("td", { class: "num" }, fmtInt(ep.compared)),
    h("td", null, h("div", { class: "rate" + (ep.differing ? "" : " zero") }, bar,
      h("span", { class: "pct", text: fmtPct(rate) })),
    h("div", { class: "sub", text: fmtInt(ep.differing) + " of " + fmtInt(ep.compared) }),
    /* failures apart: a dead shadow is not a difference */
    ep.errors ? h("div", { class: "sub failed", title: "requests whose master or shadows failed, not counted as differing",
      text: fmtInt(ep.errors) + " failed (" + fmtPct(ep.error_rate || 0) + ")" }) : null),
    h("td", null, tops.length ? h("div", { class: "chips" }, tops) : h("span", { class: "sub", text: "–" })),
    h("td", { class: "num" }, latencyCell(master, false)),
    h("td", { class: "num" }, shadows.map((b) => h("div", null,
      shadows.length > 1 ? h("span", { class: "sub", text: b.name + " " }) : null,
      latencyCell(b, b.regression)))),
    h("td", null, flag));
  }

  function renderEndpoints() {
    const data = state.endpoints;
    if (!data) return;
    const f = $("ep-filter").value.trim();
    let match = () => true;
    if (f.includes("*") || f.includes("?")) {
      const re = globToRegExp(f);
      match = (ep) => re.test(ep.endpoint) || re.test(ep.endpoint.slice(ep.endpoint.indexOf(" ") + 1));
    } else if (f) {
      match = (ep) => ep.endpoint.toLowerCase().includes(f.toLowerCase());
    }
    const rows = data.endpoints.filter(match).map(endpointRow);
    $("endpoints").tBodies[0].replaceChildren(...rows);
    $("endpoints-empty").hidden = rows.length > 0;
  }

  async function refreshEndpoints(force) {
    const [, since] = rangeInfo();
    const q = since ? "?since=" + since + "s" : "";
    const data = await getJSON(scoped("/api/endpoints" + q), "endpoints", force);
    if (!data) return;
    state.endpoints = data;
    renderEndpoints();
    if (!isLive()) renderStoreCards(data);
  }

  /* --- results list -------------------------------------------------------- */

  function statusText(b) {
    if (!b) return "–";
    return b.error ? b.error : String(b.status);
  }

  function resultRow(r) {
    const master = r.backends.find((b) => roleOf(b) === "master") || r.backends[0];
    const shadows = r.backends.filter((b) => b !== master);
    const statuses = h("span", { class: "st" },
      h("span", { class: master && master.error ? "st err" : "st", text: statusText(master) }),
      shadows.map((b) => [" → ", h("span", {
        class: b.error || (master && b.status !== master.status) ? "st err" : "st",
        title: b.name, text: statusText(b),
      })]));
    const locs = (r.locations || []).map((l) => h("span", { class: "chip", title: l, text: l }));
    return h("tr", { class: "link", "data-id": r.id, onclick: () => { location.hash = "#/result/" + encodeURIComponent(r.id); } },
      h("td", { title: r.time, class: "sub" }, ago(r.ts)),
      h("td", null, h("div", { class: "url" }, h("span", { class: "sub", text: r.method + " " }), r.url),
        state.route.endpoint ? null : h("div", { class: "sub", text: r.endpoint })),
      h("td", null, statuses),
      h("td", null, r.equal ? h("span", { class: "flag ok", text: "equal" })
        : h("div", { class: "chips" }, h("span", { class: "flag bad", text: r.differences + " differing" }), locs)),
      h("td", { class: "num" }, fmtMs(master && master.elapsed_ms)),
      h("td", { class: "num" }, shadows.map((b) => h("div", {
        class: r.latency_regression && r.latency_regression.includes(b.name) ? "lat slow" : "lat",
      }, fmtMs(b.elapsed_ms)))));
  }

  function renderResults() {
    const rows = state.results.map(resultRow);
    $("results").tBodies[0].replaceChildren(...rows);
    $("results-empty").hidden = rows.length > 0;
    $("results-empty").textContent = state.onlyDiffering ? "No differing results yet." : "No results yet.";
    $("results-more").hidden = !state.nextBefore;
    const ep = state.route.endpoint;
    $("results-title").textContent = (state.onlyDiffering ? "Recent differing results" : "Recent results") +
      (ep ? " · " + ep : "");
  }

  function resultsQuery(before) {
    const p = new URLSearchParams();
    if (state.route.endpoint) p.set("endpoint", state.route.endpoint);
    if (state.onlyDiffering) p.set("differing", "1");
    p.set("limit", "25");
    if (before) p.set("before", before);
    return scoped("/api/results?" + p.toString());
  }

  async function refreshResults(force) {
    const data = await getJSON(resultsQuery(null), "results", force);
    if (!data) return;
    if (state.olderLoaded && !force) {
      /* Keep the older pages the user opened; put new rows on top. */
      const have = new Set(state.results.map((r) => r.id));
      state.results = data.results.filter((r) => !have.has(r.id)).concat(state.results);
    } else {
      state.results = data.results;
      state.nextBefore = data.next_before;
      state.olderLoaded = false;
    }
    renderResults();
  }

  async function loadOlder() {
    if (!state.nextBefore) return;
    const data = await getJSON(resultsQuery(state.nextBefore), null, true);
    state.results = state.results.concat(data.results);
    state.nextBefore = data.next_before;
    state.olderLoaded = true;
    renderResults();
  }

  /* --- chart --------------------------------------------------------------- */

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  /* Axis labels: as short as the scale allows. */
  function axisMs(ms) {
    if (ms >= 1000) return +(ms / 1000).toPrecision(3) + " s";
    return +ms.toPrecision(3) + " ms";
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /* Geometry shared by drawing and hovering. */
  function chartLayout() {
    const s = state.series;
    const canvas = $("chart");
    const w = canvas.clientWidth, hgt = 220;
    const pad = { l: 48, r: 58, t: 14, b: 24 };
    const bucket = s.bucket_seconds;
    const now = Date.now() / 1000;
    const [, back] = rangeInfo();
    const first = s.buckets.length ? s.buckets[0].t : now - 3600;
    let t0 = back ? now - back : first;
    if (!back && s.buckets.length < 2) t0 = Math.min(first, now - 3600);
    /* the newest bucket may run past now: show it whole */
    const t1 = s.buckets.length ? Math.max(now, s.buckets[s.buckets.length - 1].t + bucket) : now;
    const pw = w - pad.l - pad.r, ph = hgt - pad.t - pad.b;
    const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * pw;
    const bw = Math.max(2, (bucket / (t1 - t0)) * pw - 1);
    return { canvas, w, hgt, pad, pw, ph, t0, t1, x, bw, bucket };
  }

  function drawChart() {
    const s = state.series;
    if (!s) return;
    const L = chartLayout();
    const { canvas, w, hgt, pad, pw, ph, t0, t1, x, bw } = L;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
    canvas.style.height = hgt + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const ink = cssVar("--muted"), line = cssVar("--line");
    const colBar = cssVar("--bar");
    const colMaster = cssVar("--master"), colShadow = cssVar("--shadow"), colBad = cssVar("--bad");
    ctx.font = "11px " + cssVar("--sans");

    const b = s.buckets;
    const cmax = niceMax(Math.max(1, ...b.map((v) => v.compared)));
    const lat = [];
    for (const v of b) for (const k of ["master_p50_ms", "shadow_p50_ms", "master_p90_ms", "shadow_p90_ms"]) if (v[k] != null) lat.push(v[k]);
    /* Latency on a log scale, by decades: a 1 ms page and a 120 ms one
     * (the usual mix) both stay readable. */
    const pos = lat.filter((ms) => ms > 0);
    const dlo = Math.floor(Math.log10(pos.length ? Math.min(...pos) : 1));
    const dhi = Math.max(dlo + 1, Math.ceil(Math.log10(pos.length ? Math.max(...pos) : 10)));
    const yc = (n) => pad.t + ph - (n / cmax) * ph;
    const yl = (ms) => pad.t + ph - ((Math.log10(Math.max(ms, Math.pow(10, dlo))) - dlo) / (dhi - dlo)) * ph;

    /* grid and axes */
    ctx.strokeStyle = line;
    ctx.lineWidth = 1;
    ctx.fillStyle = ink;
    for (let i = 0; i <= 4; i++) {
      const y = Math.round(pad.t + (ph * i) / 4) + 0.5;
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + pw, y); ctx.stroke();
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      ctx.fillText(fmtInt(Math.round(cmax * (1 - i / 4))), pad.l - 6, y);
    }
    ctx.textAlign = "left";
    for (let d = dlo; d <= dhi; d++) {
      const y = Math.round(yl(Math.pow(10, d))) + 0.5;
      ctx.beginPath(); ctx.moveTo(pad.l + pw, y); ctx.lineTo(pad.l + pw + 4, y); ctx.stroke();
      ctx.fillText(axisMs(Math.pow(10, d)), pad.l + pw + 7, y);
    }
    /* time ticks: about six of them, on round times */
    const span = t1 - t0;
    const steps = [60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400, 172800];
    const step = steps.find((st) => span / st <= 7) || 604800;
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const tz = new Date().getTimezoneOffset() * 60;
    for (let t = Math.ceil((t0 - tz) / step) * step + tz; t <= t1; t += step) {
      const xx = Math.round(x(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(xx, pad.t + ph); ctx.lineTo(xx, pad.t + ph + 4); ctx.stroke();
      ctx.fillText(clockTime(t, step >= 86400 || span > 86400), xx, pad.t + ph + 7);
    }

    /* everything from here stays inside the plot area */
    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.l, pad.t - 4, pw, ph + 4);
    ctx.clip();
    /* hovered bucket */
    if (state.hover >= 0 && b[state.hover]) {
      ctx.fillStyle = cssVar("--accent-soft");
      ctx.fillRect(x(b[state.hover].t) - 2, pad.t, bw + 4, ph);
    }
    /* bars: compared, and the differing part of it */
    for (const v of b) {
      const xx = x(v.t);
      if (xx + bw < pad.l) continue;
      ctx.fillStyle = colBar;
      ctx.fillRect(xx, yc(v.compared), bw, pad.t + ph - yc(v.compared));
      if (v.differing) {
        ctx.fillStyle = colBad;
        ctx.fillRect(xx, yc(v.differing), bw, pad.t + ph - yc(v.differing));
      }
    }
    /* latency lines: p50 solid, p90 dashed */
    const path = (key, color, dashed) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = dashed ? 1.2 : 2;
      ctx.setLineDash(dashed ? [4, 3] : []);
      ctx.beginPath();
      let open = false, prev = null;
      for (const v of b) {
        if (v[key] == null) { open = false; continue; }
        const xx = x(v.t) + bw / 2, yy = yl(v[key]);
        /* a gap of more than two buckets breaks the line */
        if (!open || (prev != null && v.t - prev > 2 * L.bucket)) ctx.moveTo(xx, yy);
        else ctx.lineTo(xx, yy);
        open = true; prev = v.t;
      }
      ctx.stroke();
      for (const v of b) {
        if (v[key] == null || dashed) continue;
        ctx.fillStyle = color;
        ctx.beginPath(); ctx.arc(x(v.t) + bw / 2, yl(v[key]), 2, 0, 2 * Math.PI); ctx.fill();
      }
    };
    path("master_p90_ms", colMaster, true);
    path("shadow_p90_ms", colShadow, true);
    path("master_p50_ms", colMaster, false);
    path("shadow_p50_ms", colShadow, false);
    ctx.setLineDash([]);
    ctx.restore();
    if (!b.length) {
      ctx.fillStyle = ink; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.font = "13px " + cssVar("--sans");
      ctx.fillText("No results in this time range", pad.l + pw / 2, pad.t + ph / 2);
    }
  }

  function chartHover(ev) {
    const s = state.series;
    if (!s || !s.buckets.length) return;
    const L = chartLayout();
    const rect = L.canvas.getBoundingClientRect();
    const px = ev.clientX - rect.left;
    let best = -1, dist = Infinity;
    s.buckets.forEach((v, i) => {
      const d = Math.abs(L.x(v.t) + L.bw / 2 - px);
      if (d < dist) { dist = d; best = i; }
    });
    const tip = $("chart-tip");
    if (best < 0 || dist > Math.max(12, L.bw)) {
      tip.hidden = true;
      if (state.hover !== -1) { state.hover = -1; drawChart(); }
      return;
    }
    if (best !== state.hover) { state.hover = best; drawChart(); }
    const v = s.buckets[best];
    tip.replaceChildren(
      h("div", null, h("b", { text: clockTime(v.t, true) }), " · " + (L.bucket >= 60 ? L.bucket / 60 + " min" : L.bucket + " s")),
      h("div", null, fmtInt(v.compared) + " compared, " + fmtInt(v.differing) + " differing (" + fmtPct(v.compared ? v.differing / v.compared : 0) + ")"),
      h("div", null, "master p50 " + fmtMs(v.master_p50_ms) + " · p90 " + fmtMs(v.master_p90_ms)),
      h("div", null, "shadow p50 " + fmtMs(v.shadow_p50_ms) + " · p90 " + fmtMs(v.shadow_p90_ms)));
    tip.hidden = false;
    const left = Math.min(L.w - tip.offsetWidth - 4, Math.max(0, L.x(v.t) + L.bw + 10));
    tip.style.left = left + "px";
    tip.style.top = "8px";
  }

  async function refreshSeries(force) {
    const [, since, bucket] = rangeInfo();
    const p = new URLSearchParams({ bucket: String(bucket), since: since ? since + "s" : "all" });
    if (state.route.endpoint) p.set("endpoint", state.route.endpoint);
    const data = await getJSON(scoped("/api/timeseries?" + p.toString()), "series", force);
    $("chart-scope").replaceChildren(state.route.endpoint
      ? h("span", null, state.route.endpoint, " · ", h("a", { href: "#/", text: "all endpoints" }))
      : "all endpoints");
    if (!data) { drawChart(); return; }
    state.series = data;
    drawChart();
  }

  function buildLegend() {
    const item = (cls, text, isLine) => h("span", null, h("i", { class: cls + (isLine ? " line" : "") }), text);
    $("chart-legend").replaceChildren(
      item("c-compared", "compared"), item("c-differing", "differing"),
      item("c-master", "master p50 (p90 dashed)", true), item("c-shadow", "shadow p50 (p90 dashed)", true),
      h("span", { class: "sub", text: "latency on a log scale, right" }));
  }

  /* --- line diff (for aligning two texts side by side) --------------------- */

  /* Myers' O(ND) diff of two arrays of strings. Returns ops
   * [["=", i, j] | ["-", i, -1] | ["+", -1, j]] in order, or null when the
   * edit distance exceeds MAX_ALIGN_D (then the caller shows both sides
   * unaligned). */
  function lineDiff(a, b) {
    let pre = 0;
    while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
    let suf = 0;
    while (suf < a.length - pre && suf < b.length - pre &&
           a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
    const A = a.slice(pre, a.length - suf), B = b.slice(pre, b.length - suf);
    const n = A.length, m = B.length, max = n + m, off = max + 1;
    const v = new Int32Array(2 * max + 3);
    const trace = [];
    let found = -1;
    for (let d = 0; d <= Math.min(max, MAX_ALIGN_D) && found < 0; d++) {
      trace.push(v.slice(off - d, off + d + 1));  /* state before step d */
      for (let k = -d; k <= d; k += 2) {
        let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
        let y = x - k;
        while (x < n && y < m && A[x] === B[y]) { x++; y++; }
        v[off + k] = x;
        if (x >= n && y >= m) { found = d; break; }
      }
    }
    if (found < 0) return null;
    const ops = [];
    let x = n, y = m;
    for (let d = found; d > 0; d--) {
      const t = trace[d];
      const at = (k) => t[k + d];
      const k = x - y;
      const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
      const px = at(prevK), py = px - prevK;
      while (x > px && y > py) { ops.push(["=", x - 1, y - 1]); x--; y--; }
      if (x === px) ops.push(["+", -1, y - 1]);
      else ops.push(["-", x - 1, -1]);
      x = px; y = py;
    }
    while (x > 0 && y > 0) { ops.push(["=", x - 1, y - 1]); x--; y--; }
    ops.reverse();
    const shift = (op) => [op[0], op[1] < 0 ? -1 : op[1] + pre, op[2] < 0 ? -1 : op[2] + pre];
    const out = [];
    for (let i = 0; i < pre; i++) out.push(["=", i, i]);
    for (const op of ops) out.push(shift(op));
    for (let i = 0; i < suf; i++) out.push(["=", a.length - suf + i, b.length - suf + i]);
    slide(out, a, b); /* over the whole, so runs can slide into the suffix */
    return out;
  }

  /* Of the equally short edit scripts, Myers' picks one; a run of pure
   * deletions (or insertions) can often slide down by a line, the same
   * edit either way. Sliding each as far down as it goes, as diff tools
   * do, keeps closing brackets with their own block: deleting a whole
   * array element then takes its "{" ... "}" rather than "}," ... "{". */
  function slide(ops, A, B) {
    const key = (op, type) => (type === "-" ? A[op[1]] : B[op[2]]);
    for (let i = 0; i < ops.length; i++) {
      const type = ops[i][0];
      if (type === "=") continue;
      let j = i;
      while (j < ops.length && ops[j][0] === type) j++;
      if (i > 0 && ops[i - 1][0] !== "=") { i = j - 1; continue; } /* part of a change */
      while (j < ops.length && ops[j][0] === "=" && key(ops[i], type) === key(ops[j], type)) {
        const eq = ops[j];
        if (type === "-") { ops[i] = ["=", ops[i][1], eq[2]]; ops[j] = ["-", eq[1], -1]; }
        else { ops[i] = ["=", eq[1], ops[i][2]]; ops[j] = ["+", -1, eq[2]]; }
        i++; j++;
      }
      i = j - 1;
    }
  }

  /* Ops -> rows {l, r} (line indexes or -1), pairing each run of removed
   * lines with the added lines that follow it. */
  function opsToRows(ops) {
    const rows = [];
    let dels = [], adds = [];
    const flush = () => {
      for (let i = 0; i < Math.max(dels.length, adds.length); i++)
        rows.push({ l: i < dels.length ? dels[i] : -1, r: i < adds.length ? adds[i] : -1, same: false });
      dels = []; adds = [];
    };
    for (const [op, i, j] of ops) {
      if (op === "=") { flush(); rows.push({ l: i, r: j, same: true }); }
      else if (op === "-") dels.push(i);
      else adds.push(j);
    }
    flush();
    return rows;
  }

  /* --- JSON bodies ----------------------------------------------------------- */

  /* A key as kagami writes it in a JSON path (see compare/jsondiff.h). */
  function keySegment(k) {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? "." + k : "[" + JSON.stringify(k) + "]";
  }

  /* Pretty-prints v into lines, each with the JSON path of its value. */
  function jsonLines(v) {
    const out = [];
    const walk = (val, path, depth, key, comma) => {
      const pad = "  ".repeat(depth);
      const pre = pad + (key == null ? "" : JSON.stringify(key) + ": ");
      if (val !== null && typeof val === "object") {
        const arr = Array.isArray(val);
        const entries = arr ? val.map((x, i) => [i, x]) : Object.entries(val);
        if (!entries.length) { out.push({ text: pre + (arr ? "[]" : "{}") + comma, path }); return; }
        out.push({ text: pre + (arr ? "[" : "{"), path });
        entries.forEach(([k, x], i) => walk(x, arr ? path + "[" + k + "]" : path + keySegment(k),
          depth + 1, arr ? null : k, i < entries.length - 1 ? "," : ""));
        out.push({ text: pad + (arr ? "]" : "}") + comma, path, close: true });
      } else {
        out.push({ text: pre + JSON.stringify(val) + comma, path });
      }
    };
    walk(v, "$", 0, null, "");
    return out;
  }

  /* The difference (of those given) covering a path: at it or above it. */
  function coveringDiff(diffs, path) {
    for (const d of diffs) {
      const w = d.where;
      if (path === w || path.startsWith(w + ".") || path.startsWith(w + "[")) return d;
    }
    return null;
  }

  /* A JSON path pattern (the config's syntax: $, .key, ["key"], [N], [*],
   * .*, and .. before a segment) as a RegExp matching the paths jsonLines
   * gives, at the node or under it; null when it cannot be read. Used for
   * "unordered PATTERN" in a result's suppressed list: the arrays whose
   * elements that rule let come in another order. */
  function jsonPatternRegExp(p) {
    const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const anyKey = '(?:\\.[A-Za-z_][A-Za-z0-9_]*|\\["(?:[^"\\\\]|\\\\.)*"\\])';
    const anySeg = '(?:\\.[A-Za-z_][A-Za-z0-9_]*|\\[(?:\\d+|"(?:[^"\\\\]|\\\\.)*")\\])';
    const tok = /(\.\.?)(\*|[^.[]+)|(\.\.)?\[(\*|\d+|"(?:[^"\\]|\\.)*")\]/y;
    if (p[0] !== "$") return null;
    let re = "^\\$";
    for (let i = 1; i < p.length;) {
      tok.lastIndex = i;
      const m = tok.exec(p);
      if (!m) return null;
      i = tok.lastIndex;
      if (m[1] === ".." || m[3]) re += anySeg + "*";
      const seg = m[2] != null ? m[2] : m[4];
      if (m[2] === "*") re += anyKey;
      else if (m[4] === "*") re += "\\[\\d+\\]";
      else if (m[4] != null && /^\d+$/.test(seg)) re += "\\[" + seg + "\\]";
      else {
        let k;
        try { k = m[4] != null ? JSON.parse(seg) : seg; } catch (e) { return null; }
        re += esc(keySegment(k));
      }
    }
    return new RegExp(re + "(?=$|[.[])");
  }

  /* --- side-by-side rendering ------------------------------------------------ */

  function sbsTable(leftName, rightName) {
    const t = h("table", null,
      h("colgroup", null, h("col", { class: "n" }), h("col"), h("col", { class: "n" }), h("col")),
      h("thead", null, h("tr", null,
        h("th", { colspan: 2, class: "m", text: leftName + " (master)" }),
        h("th", { colspan: 2, class: "s", text: rightName + " (shadow)" }))));
    const body = h("tbody");
    t.append(body);
    return { t, body };
  }

  function cell(num, text, cls) {
    if (num < 0) return [h("td", { class: "n" }), h("td", { class: "c blank" })];
    return [h("td", { class: "n", text: num + 1 }), h("td", { class: "c" + (cls ? " " + cls : ""), text: text })];
  }

  /* Appends rows, folding long unchanged stretches into a gap row that
   * unfolds when clicked. */
  function appendFolded(body, rows, render) {
    const changed = rows.map((r) => !r.same);
    const near = new Array(rows.length).fill(false);
    changed.forEach((c, i) => {
      if (!c) return;
      for (let k = Math.max(0, i - CONTEXT); k <= Math.min(rows.length - 1, i + CONTEXT); k++) near[k] = true;
    });
    const anyChange = changed.some(Boolean);
    for (let i = 0; i < rows.length;) {
      if (!anyChange || near[i] || rows.length < 40) { body.append(render(rows[i])); i++; continue; }
      let j = i;
      while (j < rows.length && !near[j]) j++;
      if (j - i < 6) { for (; i < j; i++) body.append(render(rows[i])); continue; }
      const hidden = rows.slice(i, j);
      const gap = h("tr", { class: "gap" }, h("td", {
        colspan: 4, text: "⋯ " + hidden.length + " unchanged lines (click to show)",
      }));
      gap.addEventListener("click", () => gap.replaceWith(...hidden.map(render)));
      body.append(gap);
      i = j;
    }
  }

  function jsonSideBySide(masterText, shadowText, diffs, names, moved) {
    let a, b;
    try { a = JSON.parse(masterText); b = JSON.parse(shadowText); } catch (e) { return null; }
    const L = jsonLines(a), R = jsonLines(b);
    const ops = lineDiff(L.map((x) => x.text.replace(/,$/, "")), R.map((x) => x.text.replace(/,$/, "")));
    const rows = ops ? opsToRows(ops) : L.map((_, i) => ({ l: i, r: i < R.length ? i : -1, same: false }))
      .concat(R.slice(L.length).map((_, i) => ({ l: -1, r: L.length + i, same: false })));
    const { t, body } = sbsTable(names[0], names[1]);
    const side = (lines, idx, other, isMaster) => {
      if (idx < 0) return cell(-1);
      const ln = lines[idx];
      const d = coveringDiff(diffs, ln.path);
      let cls = "";
      if (d) cls = isMaster ? (d.shadow == null ? "del" : "chg") : (d.master == null ? "add" : "chg");
      else if (moved.some((re) => re.test(ln.path))) cls = "mv";
      else if (other < 0) cls = isMaster ? "del" : "add";
      const tds = cell(idx, ln.text, cls);
      if (d && ln.path === d.where && !ln.close) tds[1].dataset.path = ln.path;
      return tds;
    };
    appendFolded(body, rows, (row) => {
      const tr = h("tr", null, side(L, row.l, row.r, true), side(R, row.r, row.l, false));
      if (!row.same && (row.l < 0 || row.r < 0 || L[row.l].text !== R[row.r].text)) tr.dataset.changed = "1";
      return tr;
    });
    const note = ops ? "JSON, pretty-printed; differing paths highlighted" : "JSON (too different to align line by line)";
    return { node: t, note: moved.length ? note + "; elements in another order, declared equal by an unordered rule, marked as moved" : note };
  }

  /* Parses a unified diff into sections {from, to, hunks}. A hunk is
   * {a, b, lines} with line numbers ("@@ -3,4 +3,5 @@"), or {label, lines}
   * when the differ names a location instead ("@@ $.items[2].price @@",
   * as for JSON). */
  function parseUnified(text) {
    const sections = [];
    let sec = null, hunk = null, oldLeft = 0, newLeft = 0;
    const lines = text.split("\n");
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (hunk && hunk.label == null && (oldLeft > 0 || newLeft > 0)) {
        const tag = line[0] || " ";
        if (tag === "\\") { hunk.lines.push(["\\", line.slice(1).trim()]); continue; }
        hunk.lines.push([tag, line.slice(1)]);
        if (tag === "-") oldLeft--;
        else if (tag === "+") newLeft--;
        else { oldLeft--; newLeft--; }
        continue;
      }
      if (line.startsWith("--- ") && i + 1 < lines.length && lines[i + 1].startsWith("+++ ")) {
        sec = { from: line.slice(4).trim(), to: lines[i + 1].slice(4).trim(), hunks: [] };
        sections.push(sec);
        hunk = null;
        i++;
        continue;
      }
      if (line.startsWith("@@") && sec) {
        const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
        if (m) {
          hunk = { a: +m[1], b: +m[3], lines: [] };
          oldLeft = m[2] == null ? 1 : +m[2];
          newLeft = m[4] == null ? 1 : +m[4];
        } else {
          hunk = { label: line.replace(/^@@ ?/, "").replace(/ ?@@$/, ""), lines: [] };
        }
        sec.hunks.push(hunk);
        continue;
      }
      if (hunk && (hunk.label != null || line.startsWith("\\")))
        hunk.lines.push([line[0] || " ", line.slice(1)]);
    }
    return sections;
  }

  function unifiedSideBySide(section, names) {
    const { t, body } = sbsTable(names[0], names[1]);
    let lastA = 0;
    for (const hk of section.hunks) {
      if (hk.label != null) { /* a located hunk: no line numbers */
        body.append(h("tr", { class: "gap" }, h("td", { colspan: 4, text: hk.label })));
        const dels = hk.lines.filter((l) => l[0] === "-"), adds = hk.lines.filter((l) => l[0] === "+");
        for (let i = 0; i < Math.max(dels.length, adds.length); i++)
          body.append(h("tr", { "data-changed": "1" },
            dels[i] ? [h("td", { class: "n" }), h("td", { class: "c del", text: dels[i][1] })] : cell(-1),
            adds[i] ? [h("td", { class: "n" }), h("td", { class: "c add", text: adds[i][1] })] : cell(-1)));
        continue;
      }
      const firstA = hk.a === 0 ? 0 : hk.a - 1; /* 0-based first old line */
      if (firstA > lastA) {
        body.append(h("tr", { class: "gap" }, h("td", {
          colspan: 4, text: "⋯ " + (firstA - lastA) + " unchanged line" + (firstA - lastA === 1 ? "" : "s"),
        })));
      }
      let la = hk.a === 0 ? 0 : hk.a - 1, lb = hk.b === 0 ? 0 : hk.b - 1;
      let dels = [], adds = [];
      const flush = () => {
        for (let i = 0; i < Math.max(dels.length, adds.length); i++) {
          const d = dels[i], a = adds[i];
          body.append(h("tr", { "data-changed": "1" },
            d ? cell(d[0], d[1], a ? "del" : "del") : cell(-1),
            a ? cell(a[0], a[1], "add") : cell(-1)));
        }
        dels = []; adds = [];
      };
      for (const [tag, text] of hk.lines) {
        if (tag === "-") dels.push([la++, text]);
        else if (tag === "+") adds.push([lb++, text]);
        else if (tag === "\\") continue;
        else { flush(); body.append(h("tr", null, cell(la++, text, ""), cell(lb++, text, ""))); }
      }
      flush();
      lastA = la;
    }
    if (!section.hunks.length) body.append(h("tr", null, h("td", { colspan: 4, class: "empty", text: "The bodies are equal." })));
    return { node: t, note: "line diff (" + section.hunks.length + " hunk" + (section.hunks.length === 1 ? "" : "s") + ")" };
  }

  function textSideBySide(masterText, shadowText, names) {
    const L = masterText.split("\n"), R = shadowText.split("\n");
    const ops = lineDiff(L, R);
    if (!ops) return null;
    const rows = opsToRows(ops);
    const { t, body } = sbsTable(names[0], names[1]);
    appendFolded(body, rows, (row) => h("tr", row.same ? null : { "data-changed": "1" },
      row.l < 0 ? cell(-1) : cell(row.l, L[row.l], row.same ? "" : "del"),
      row.r < 0 ? cell(-1) : cell(row.r, R[row.r], row.same ? "" : "add")));
    return { node: t, note: "line diff of the stored bodies" };
  }

  function bodyText(b) {
    if (!b || b.body == null) return null;
    if (b.body_encoding === "base64") return null;
    return b.body;
  }

  /* --- result view ----------------------------------------------------------- */

  function valueCell(v, cls) {
    if (v == null) return h("td", null, h("span", { class: "val none", text: "(absent)" }));
    return h("td", null, h("span", { class: "val " + cls, text: v }));
  }

  function focusPath(where) {
    const td = [...document.querySelectorAll("#sbs td[data-path]")].find((x) => x.dataset.path === where);
    document.querySelectorAll("#sbs tr.focus").forEach((tr) => tr.classList.remove("focus"));
    if (!td) return;
    const tr = td.closest("tr");
    tr.classList.add("focus");
    tr.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  function renderResult() {
    const r = state.result;
    const master = r.backends[0];
    const shadows = r.backends.slice(1);
    if (!state.shadow || !shadows.some((b) => b.name === state.shadow)) {
      const firstDiff = shadows.find((b) => b.equal === false) || shadows[0];
      state.shadow = firstDiff ? firstDiff.name : null;
    }
    const shadow = shadows.find((b) => b.name === state.shadow);

    $("result-title").textContent = r.method + " " + r.url;
    const badges = [r.equal ? h("span", { class: "flag ok", text: "equal" }) : h("span", { class: "flag bad", text: "differs" }),
      h("span", { class: "flag info", text: r.kind || "?" })];
    if (r.truncated) badges.push(h("span", { class: "flag muted", text: "truncated" }));
    if (r.latency_regression && r.latency_regression.length)
      badges.push(h("span", { class: "flag bad", text: "slower: " + r.latency_regression.join(", ") }));
    $("result-badges").replaceChildren(...badges);
    $("result-back").href = "#/endpoint/" + encodeURIComponent(r.endpoint);
    const fact = (k, v) => [h("dt", { text: k }), h("dd", null, v)];
    $("result-facts").replaceChildren(...[
      fact("Endpoint", h("a", { href: "#/endpoint/" + encodeURIComponent(r.endpoint), text: r.endpoint })),
      fact("Time", r.time + " (" + ago(r.ts) + ")"),
      fact("Id", r.id)].flat());

    $("result-backends").tBodies[0].replaceChildren(...r.backends.map((b) => h("tr", null,
      h("td", null, h("b", { text: b.name })),
      h("td", { class: "sub", text: b.role }),
      h("td", null, h("span", { class: b.error ? "st err" : "st", text: statusText(b) })),
      h("td", { class: "num", text: fmtMs(b.elapsed_ms) }),
      h("td", { class: "num", text: fmtBytes(b.bytes) }),
      /* equal is null for the master and for noise-learning partners
       * (secondary, repeat): they are compared for learning only. */
      h("td", null, b.equal == null ? "" : b.equal ? h("span", { class: "flag ok", text: "equal" })
        : h("span", { class: "flag bad", text: "differs" }),
      b.compare_error ? h("span", { class: "sub", text: " " + b.compare_error }) : null))));

    /* which shadow */
    const pick = $("shadow-pick");
    $("shadow-pick-wrap").hidden = shadows.length < 2;
    pick.replaceChildren(...shadows.map((b) => h("option", { value: b.name, selected: b.name === state.shadow, text: b.name })));

    const diffs = (r.differences || []).filter((d) => !d.backend || d.backend === state.shadow);
    const hdiffs = (r.header_differences || []).filter((d) => !d.backend || d.backend === state.shadow);
    const rows = diffs.map((d) => h("tr", null,
      h("td", null, h("span", { class: "where", title: "show in the bodies", text: d.where, onclick: () => focusPath(d.where) })),
      valueCell(d.master, "m"), valueCell(d.shadow, "s")))
      .concat(hdiffs.map((d) => h("tr", null,
        h("td", null, h("span", { class: "where", text: "header " + (d.name || d.header) })),
        valueCell(d.master, "m"), valueCell(d.shadow, "s"))));
    if (!rows.length) rows.push(h("tr", null, h("td", { colspan: 3, class: "sub", text: r.equal ? "No differences." : "No itemised differences for this shadow." })));
    $("result-diffs").tBodies[0].replaceChildren(...rows);
    /* "unordered PATTERN": a reordering that rule declared equal. */
    const sup = r.suppressed || [];
    const reordered = sup.filter((x) => x.startsWith("unordered ")).map((x) => x.slice(10));
    const ignored = sup.filter((x) => !x.startsWith("unordered "));
    $("result-suppressed").hidden = !sup.length;
    $("result-suppressed").textContent = [
      ignored.length ? "Ignored as noise: " + ignored.join(", ") : "",
      reordered.length ? "In another order, declared equal by an unordered rule: " + reordered.join(", ") : "",
    ].filter(Boolean).join(". ");

    /* side by side */
    const names = [master.name, shadow ? shadow.name : "shadow"];
    const mText = bodyText(master), sText = bodyText(shadow);
    let view = null;
    if (r.kind === "json" && mText != null && sText != null) view = jsonSideBySide(mText, sText, diffs, names,
      reordered.map(jsonPatternRegExp).filter(Boolean));
    if (!view && r.diff) {
      const secs = parseUnified(r.diff);
      const sec = secs.find((s) => s.to === names[1]) || (secs.length === 1 ? secs[0] : null);
      if (sec) view = unifiedSideBySide(sec, names);
    }
    if (!view && mText != null && sText != null) view = textSideBySide(mText, sText, names);
    $("sbs-note").textContent = view ? view.note : "";
    if (view) $("sbs").replaceChildren(view.node);
    else $("sbs").replaceChildren(h("p", { class: "empty", text: r.equal
      ? "The responses are equal."
      : "No bodies are stored for this result (kagami keeps them only for differing results, within store_max_body_bytes)." }));

    const hdrs = r.request_headers || [];
    $("result-headers").replaceChildren(...hdrs.map(([k, v]) => h("tr", null,
      h("td", { class: "mono", text: k }), h("td", { class: "val", text: v }))));
  }

  async function refreshResult() {
    const id = state.route.id;
    try {
      state.result = await getJSON(scoped("/api/results/" + encodeURIComponent(id)), null, true);
    } catch (e) {
      if (e.status === 404) {
        $("result-title").textContent = "No result " + id;
        $("sbs").replaceChildren(h("p", { class: "empty", text: "It may have been removed by the store's retention." }));
        return;
      }
      throw e;
    }
    renderResult();
  }

  /* --- learned noise (/api/noise) ----------------------------------------- */

  /* The view and the header link follow the route: on an endpoint's page
   * the link leads to that endpoint's noise. */
  function showNoiseView() {
    const r = state.route;
    $("view-noise").hidden = r.view !== "noise";
    const link = $("noise-link");
    link.href = r.endpoint ? "#/noise/" + encodeURIComponent(r.endpoint) : "#/noise";
    if (r.view === "noise") link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }

  /* One formatter for every row: toLocale*String makes a new one per call,
   * which thousands of rows turn into seconds. */
  const seenFmt = new Intl.DateTimeFormat([], { month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", second: "2-digit", hour12: false });

  function fmtSeen(ts) {
    if (!ts) return "–";
    const d = new Date(ts * 1000);
    return h("span", { title: d.toISOString(), text: seenFmt.format(d) });
  }

  const NOISE_ROWS = 50;       /* locations shown per endpoint until asked */
  const noiseOpen = new Set(); /* endpoints whose every location was asked
                                  for: they stay open across polls */

  function noiseRow(l) {
    return h("tr", { "data-location": l.location },
      h("td", { class: "mono", text: l.location }),
      h("td", null, h("span", l.suppressed
        ? { class: "flag info", text: "suppressed", title: "hidden in master-vs-shadow comparisons" }
        : { class: "flag muted", text: "counted", title: "differed too rarely (or too few pairs) to be hidden" })),
      h("td", { class: "num", text: fmtInt(l.differed) + " / " + fmtInt(l.pairs) }),
      h("td", null, fmtSeen(l.first_seen)),
      h("td", null, fmtSeen(l.last_seen)));
  }

  /* One endpoint: a heading row (link to its overview), then a row per
   * location, the suppressed ones first, so a person sees what is hidden
   * and on what evidence before what is only being counted. An endpoint
   * may have thousands: the first NOISE_ROWS, and a button for the rest. */
  function noiseGroup(ep) {
    const head = h("tr", null, h("th", { colspan: "5" },
      h("a", { href: "#/endpoint/" + encodeURIComponent(ep.endpoint) }, endpointLabel(ep.endpoint)),
      h("span", { class: "sub", text: fmtInt(ep.pairs) + " noise pairs, " + fmtInt(ep.suppressed) +
        " suppressed · last pair " + (ep.last_seen ? ago(ep.last_seen) : "–") })));
    const locs = ep.locations.filter((l) => l.suppressed).concat(ep.locations.filter((l) => !l.suppressed));
    const open = noiseOpen.has(ep.endpoint);
    const rows = (open ? locs : locs.slice(0, NOISE_ROWS)).map(noiseRow);
    if (!rows.length) rows.push(h("tr", null, h("td", { colspan: "5", class: "sub", text: "No location differed in a noise pair." })));
    if (!open && locs.length > NOISE_ROWS) {
      const more = h("tr", { class: "more-row" }, h("td", { colspan: "5" }, h("button", {
        type: "button", class: "more", text: "Show " + fmtInt(locs.length - NOISE_ROWS) + " more",
        onclick: () => {
          noiseOpen.add(ep.endpoint);
          more.replaceWith(...locs.slice(NOISE_ROWS).map(noiseRow));
        },
      })));
      rows.push(more);
    }
    return h("tbody", { class: "ep-group", "data-endpoint": ep.endpoint }, head, rows);
  }

  function renderNoise(data) {
    const ep = state.route.endpoint;
    $("noise-title").textContent = ep ? "Learned noise: " + ep : "Learned noise";
    $("noise-scope").replaceChildren(ep ? h("a", { href: "#/noise", text: "all endpoints" }) : "");
    $("noise-note").textContent = data.learning
      ? "A location is suppressed once it differed in at least " + fmtPct(data.threshold) + " of at least " +
        fmtInt(data.min_pairs) + " noise pairs. To review and freeze it as config rules: kagami noise --config kagami.lua --export" +
        (data.full ? " · A cap was reached: some locations were not learned, so they are not hidden." : "")
      : "This kagami does not learn noise: set noise = { learn = true } in its config.";
    /* The glob the API was given matches more than the name when the
     * name has a '*' of its own: keep the one endpoint asked for. */
    const eps = ep ? data.endpoints.filter((e) => e.endpoint === ep) : data.endpoints;
    const table = $("noise");
    for (const b of [...table.tBodies]) b.remove();
    table.append(...eps.map(noiseGroup));
    $("noise-empty").hidden = eps.length > 0 || !data.learning;
    $("noise-empty").textContent = ep ? "No noise pair seen for this endpoint yet." : "No noise pair seen yet.";
  }

  async function refreshNoise(force) {
    const ep = state.route.endpoint;
    const q = ep ? "?endpoint=" + encodeURIComponent(ep) : "";
    const data = await getJSON("/api/noise" + q, "noise" + q, force);
    if (data) renderNoise(data);
  }

  /* --- instances (/api/instances) ----------------------------------------- */

  /* The header's select: shown only on a fleet's store, which names its
   * instances; an instance no longer there falls back to the whole fleet. */
  function renderInstances() {
    const info = state.info;
    const names = info ? info.instances : [];
    const pick = $("instance");
    if (state.instance && !names.includes(state.instance)) {
      state.instance = "";
      sessionStorage.removeItem("kagami.instance");
      state.seen = {};
    }
    pick.hidden = names.length === 0;
    pick.replaceChildren(h("option", { value: "", text: "All instances" }),
      ...names.map((n) => h("option", { value: n, text: n })));
    pick.value = state.instance;
    $("noise-link").hidden = !isLive();
  }

  async function refreshInstances() {
    if (state.info && performance.now() - state.infoAt < INSTANCES_MS) return;
    const text = await get("/api/instances");
    state.info = JSON.parse(text);
    state.infoAt = performance.now();
    renderInstances();
  }

  /* --- routing and polling ----------------------------------------------- */

  function parseRoute() {
    const frag = location.hash.replace(/^#/, "") || "/";
    if (frag.startsWith("/result/")) return { view: "result", endpoint: null, id: decodeURIComponent(frag.slice(8)) };
    if (frag === "/noise" || frag.startsWith("/noise/")) return { view: "noise", endpoint: frag.length > 7 ? decodeURIComponent(frag.slice(7)) : null, id: null };
    if (frag.startsWith("/endpoint/")) return { view: "overview", endpoint: decodeURIComponent(frag.slice(10)), id: null };
    return { view: "overview", endpoint: null, id: null };
  }

  async function refresh(force) {
    if (state.inflight && !force) return;
    state.inflight = true;
    try {
      /* First: whether to ask for live counters, and for which instance. */
      const first = await Promise.allSettled([refreshInstances()]);
      const jobs = [];
      if (isLive()) jobs.push(refreshCards());
      if (state.route.view === "overview") jobs.push(refreshEndpoints(force), refreshSeries(force), refreshResults(force));
      else if (state.route.view === "noise") jobs.push(refreshNoise(force));
      else if (force) jobs.push(refreshResult());
      const outcomes = first.concat(await Promise.allSettled(jobs));
      const failed = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason);
      if (failed.some((e) => e instanceof AuthError)) { askToken(); return; }
      const storeErr = failed.find((e) => e.status === 503);
      banner(storeErr ? "Results store: " + storeErr.message : "");
      const other = failed.find((e) => e.status !== 503);
      if (other) setStatus("error", other.message);
      else setStatus("live", (isLive() ? "live" : "store") + " · updated " +
        new Date().toLocaleTimeString([], { hour12: false }));
    } finally {
      state.inflight = false;
    }
  }

  function route() {
    const prev = state.route;
    state.route = parseRoute();
    const overview = state.route.view === "overview";
    $("view-overview").hidden = !overview;
    $("view-result").hidden = state.route.view !== "result";
    showNoiseView();
    if (overview && prev.endpoint !== state.route.endpoint) {
      state.seen = {};
      state.olderLoaded = false;
    }
    if (!overview) { state.shadow = null; window.scrollTo(0, 0); }
    if (overview && state.endpoints) renderEndpoints(); /* selection */
    refresh(true);
  }

  function buildRange() {
    $("range").replaceChildren(...RANGES.map(([name]) => h("button", {
      type: "button", "aria-pressed": String(name === state.range), text: name,
      onclick: () => {
        state.range = name;
        sessionStorage.setItem("kagami.range", name);
        state.seen = {};
        buildRange();
        refresh(true);
      },
    })));
  }

  function init() {
    buildRange();
    buildLegend();
    $("ep-filter").addEventListener("input", renderEndpoints);
    $("only-differing").addEventListener("change", (e) => {
      state.onlyDiffering = e.target.checked;
      state.olderLoaded = false;
      refreshResults(true).catch(() => {});
    });
    $("instance").addEventListener("change", (e) => {
      state.instance = e.target.value;
      if (state.instance) sessionStorage.setItem("kagami.instance", state.instance);
      else sessionStorage.removeItem("kagami.instance");
      state.seen = {};
      state.olderLoaded = false;
      refresh(true);
    });
    $("results-more").addEventListener("click", () => loadOlder().catch((e) => setStatus("error", e.message)));
    $("shadow-pick").addEventListener("change", (e) => { state.shadow = e.target.value; renderResult(); });
    $("chart").addEventListener("mousemove", chartHover);
    $("chart").addEventListener("mouseleave", () => { $("chart-tip").hidden = true; state.hover = -1; drawChart(); });
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.token = $("login-token").value.trim();
      sessionStorage.setItem("kagami.token", state.token);
      $("login").close();
      refresh(true);
    });
    let resizeTimer = 0;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawChart, 100); });
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(false); });
    /* The next poll waits for the last one, and longer when the answers
     * were slow: the queries run on kagami's main thread, and a huge
     * store should not be asked again before it has caught its breath. */
    const poll = async () => {
      const t0 = performance.now();
      if (!document.hidden) await refresh(false).catch(() => {});
      setTimeout(poll, Math.max(POLL_MS, 4 * (performance.now() - t0)));
    };
    setTimeout(poll, POLL_MS);
    route();
  }

  init();
})();
