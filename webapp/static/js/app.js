// Conversa: the little glue htmx does not do. No framework, no build.
(function () {
  "use strict";
  var body = function () { return document.body; };
  // Live state: polling fallbacks check `document.body.dataset.live` before they fire.
  // A secondary socket (data-live-aux: a panel's own topics) does not speak for the page's main one.
  function main(e) { return !(e.target && e.target.closest && e.target.closest("[data-live-aux]")); }
  document.addEventListener("htmx:wsOpen", function (e) { if (main(e)) { body().dataset.live = "on"; } });
  document.addEventListener("htmx:wsClose", function (e) { if (main(e)) { body().dataset.live = "off"; } });
  document.addEventListener("htmx:wsError", function (e) { if (main(e)) { body().dataset.live = "off"; } });
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    var t = e.detail && e.detail.target;
    if (!t) { return; }
    // The server ends a session (supervisor "log out agent"): go to sign-in.
    if (t.id === "live-control" && t.dataset.redirect) { window.location.href = t.dataset.redirect; }
    // Out-of-band work that applies only where the page has the element (templating.oob_remove):
    // remove [data-remove] ids, put [data-fill] contents into their ids; the sink stays empty.
    if (t.id === "live-sink") {
      t.querySelectorAll("[data-remove]").forEach(function (m) {
        var el = document.getElementById(m.dataset.remove); if (el) { el.remove(); }
      });
      t.querySelectorAll("[data-fill]").forEach(function (m) {
        var el = document.getElementById(m.dataset.fill); if (el) { el.innerHTML = m.innerHTML; htmx.process(el); }
      });
      t.textContent = "";
    }
  });
  // A socket's first frame is the server's word that it now gets every event of its topics ("on"), or
  // that the hub is down ("off": polling resumes). What happened between the page's rendering (or a
  // dropped socket) and now came through no socket: every live region (`live-resync from:body` in its
  // hx-trigger) reloads once.
  document.addEventListener("htmx:wsAfterMessage", function (e) {
    var m = e.detail && e.detail.message;
    if (typeof m !== "string" || m.indexOf('id="live-status"') < 0) { return; }
    var on = m.indexOf('data-live="on"') >= 0;
    if (main(e)) { body().dataset.live = on ? "on" : "off"; }
    // "data-fresh": nothing happened on the page's topics since it was rendered; no reload needed.
    if (on && m.indexOf("data-fresh") < 0) { htmx.trigger(body(), "live-resync"); }
  });
  // Ticking timers: any element with data-since="<epoch seconds>" shows the time since then.
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function fmt(s) {
    s = Math.max(0, Math.floor(s)); var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return h ? h + ":" + pad(m) + ":" + pad(r) : m + ":" + pad(r);
  }
  setInterval(function () {
    var now = Date.now() / 1000 - (window.conversaClockSkew || 0);
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var since = parseFloat(el.dataset.since); if (!isNaN(since)) { el.textContent = fmt(now - since); }
    });
    // A waiting customer past the service-level, then the abandon threshold is highlighted (and stays
    // in the queue).
    document.querySelectorAll("[data-late-at]:not(.late)").forEach(function (el) {
      if (now >= parseFloat(el.dataset.lateAt)) { el.classList.add("late"); }
    });
    document.querySelectorAll("[data-abandoned-at]:not(.abandoned)").forEach(function (el) {
      if (now >= parseFloat(el.dataset.abandonedAt)) { el.classList.add("abandoned"); }
    });
  }, 1000);
  document.addEventListener("DOMContentLoaded", function () {
    var st = document.querySelector("meta[name=server-time]");
    if (st) { window.conversaClockSkew = Date.now() / 1000 - parseFloat(st.content); }
  });
  window.conversa = { fmt: fmt };
})();
// SMS segments while typing (GSM-7 / UCS-2, as webapp/providers/gsm.py counts them): a textarea with
// `data-segments` writes into the element `[data-segments-for=<its name>]` of the same form, using
// that element's data-template ("{encoding} · {units} … {segments} …"), or its data-template-one when
// {units} is 1 (both are the server's ngettext forms: "1 carácter", "2 caracteres").
(function () {
  "use strict";
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "\f^{}\\[~]|€";
  function segments(text) {
    var chars = Array.from(text || ""), gsm = chars.every(function (c) { return BASIC.indexOf(c) >= 0 || EXT.indexOf(c) >= 0; });
    var costs = chars.map(function (c) { return gsm ? (EXT.indexOf(c) >= 0 ? 2 : 1) : (c.codePointAt(0) > 0xFFFF ? 2 : 1); });
    var units = costs.reduce(function (a, b) { return a + b; }, 0), single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    var info = { encoding: gsm ? "GSM-7" : "UCS-2", units: units, segments: 0 };
    if (units === 0) { return info; }
    if (units <= single) { info.segments = 1; return info; }
    var n = 1, used = 0;  // a pair (escape, surrogate) never straddles two parts
    costs.forEach(function (c) { if (used + c > multi) { n += 1; used = 0; } used += c; });
    info.segments = n;
    return info;
  }
  function show(area) {
    var out = area.form && area.form.querySelector("[data-segments-for='" + area.name + "']");
    if (!out) { return; }
    var info = segments(area.value);
    var tpl = (info.units === 1 && out.dataset.templateOne) || out.dataset.template || "{encoding} · {units} · {segments}";
    out.textContent = tpl.replace("{encoding}", info.encoding).replace("{units}", info.units).replace("{segments}", info.segments);
  }
  document.addEventListener("input", function (e) { if (e.target.matches && e.target.matches("textarea[data-segments]")) { show(e.target); } });
  // A <select data-autosubmit> submits its form on change (pickers that also work without JavaScript).
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-autosubmit]") && e.target.form) { e.target.form.submit(); }
  });
  document.addEventListener("DOMContentLoaded", function () { document.querySelectorAll("textarea[data-segments]").forEach(show); });
  window.conversa = window.conversa || {};
  window.conversa.segments = segments;
})();
