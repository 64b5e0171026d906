// The agent workspace: composer helpers, segment counter, shortcuts, socket follow/draft. ES5, no build.
(function () {
  "use strict";
  var sock = null, draftTimer = null, readTimer = null;
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function openId() { var c = $("#conversation .conv-inner"); return c ? parseInt(c.dataset.interaction, 10) : null; }
  function composer() { return $("#conversation .composer textarea"); }
  function live() { return sock && document.body.dataset.live === "on"; }
  function send(obj) { if (live()) { sock.send(JSON.stringify(obj)); } }

  // -- GSM-7 / UCS-2 segments: the rules of webapp/providers/gsm.py ----------------------------
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà", EXT = "\f^{}\\[~]|€";
  function segments(text) {
    var chars = [], i, c, gsm = true;
    for (i = 0; i < text.length; i++) {
      c = text.charAt(i);
      if (c >= "\ud800" && c <= "\udbff" && i + 1 < text.length) { c += text.charAt(++i); }
      chars.push(c);
      if (c.length > 1 || (GSM.indexOf(c) < 0 && EXT.indexOf(c) < 0)) { gsm = false; }
    }
    var costs = chars.map(function (ch) { return gsm ? (EXT.indexOf(ch) >= 0 ? 2 : 1) : ch.length; });
    var units = costs.reduce(function (a, b) { return a + b; }, 0), single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    var segs = 0, used = 0;
    if (units > 0 && units <= single) { segs = 1; } else if (units > single) {
      segs = 1;
      costs.forEach(function (k) { if (used + k > multi) { segs++; used = 0; } used += k; });
    }
    return { encoding: gsm ? "GSM-7" : "UCS-2", units: units, segments: segs, per: units > single ? multi : single };
  }
  function count(ta) {
    var out = document.getElementById(ta.dataset.segments); if (!out) { return; }
    var s = segments(ta.value);
    out.textContent = s.units + "/" + (s.segments > 1 ? s.per * s.segments : s.per) + " · " + s.segments + " SMS · " + s.encoding;
    out.className = "seg" + (s.segments > 1 ? " multi" : "");
  }
  window.conversaSegments = segments;

  // -- composer ---------------------------------------------------------------------------------
  function insertAt(ta, text) {
    var s = ta.selectionStart || 0, e = ta.selectionEnd || 0, v = ta.value;
    ta.value = v.slice(0, s) + text + v.slice(e);
    ta.selectionStart = ta.selectionEnd = s + text.length;
    ta.focus();
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  }
  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("[data-insert]");
    if (btn) {
      var form = btn.closest("form"), ta = form && form.querySelector("textarea");
      if (ta) { insertAt(ta, btn.dataset.insert); closePops(); }
      return;
    }
    // A click outside an open menu closes it.
    $$("details.pop[open]").forEach(function (d) { if (!d.contains(e.target)) { d.open = false; } });
  });
  document.addEventListener("input", function (e) {
    var ta = e.target;
    if (ta.dataset && ta.dataset.segments) { count(ta); }
    if (ta.closest && ta.closest("#conversation .composer")) { queueDraft(); }
  });
  function queueDraft() { if (!draftTimer) { draftTimer = setTimeout(function () { draftTimer = null; sendDraft(); }, 700); } }
  function sendDraft() {
    var id = openId(), ta = composer();
    send({ type: "draft", interaction_id: id, draft: ta ? ta.value : "" });
  }
  function follow() { var id = openId(); send({ type: "follow", topics: id ? ["interaction:" + id] : [] }); }

  // -- popovers: one open at a time, Esc closes ---------------------------------------------------
  function closePops(except) { $$("details.pop[open]").forEach(function (d) { if (d !== except && !d.contains(except)) { d.open = false; } }); }
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (d.open && d.classList && d.classList.contains("pop")) {
      closePops(d);
      var first = d.querySelector(".pop-body button, .pop-body input, .pop-body select, .pop-body a");
      if (first && d.dataset.pop) { first.focus(); }
    }
  }, true);
  function openPop(name) {
    var d = $("#conversation details[data-pop=" + name + "]");
    if (d) { d.open = true; }
  }

  // -- keyboard ------------------------------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    var t = e.target, typing = /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName);
    if (e.key === "Escape") { closePops(); return; }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.tagName === "TEXTAREA" && t.form) {
      e.preventDefault();
      if (t.form.requestSubmit) { t.form.requestSubmit(); } else { htmx.trigger(t.form, "submit"); }
      return;
    }
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      var items = $$("#inbox-list .item"), cur = items.indexOf($("#inbox-list .item[aria-current]"));
      var next = items[e.key === "ArrowUp" ? Math.max(0, cur - 1) : Math.min(items.length - 1, cur + 1)];
      if (next) { e.preventDefault(); next.click(); next.focus(); }
      return;
    }
    if (e.altKey && (e.key === "k" || e.key === "K")) { e.preventDefault(); openPop("canned"); return; }
    if (e.altKey && (e.key === "e" || e.key === "E")) { e.preventDefault(); openPop("emoji"); return; }
    if (e.key === "/" && !typing) { e.preventDefault(); var s = $("#search"); if (s) { s.focus(); s.select(); } }
  });

  // -- after swaps: current item, scroll, duplicates, counters -------------------------------------------
  function markCurrent() {
    var id = String(openId() || "");
    $$("#inbox-list .item").forEach(function (a) {
      if (a.dataset.id === id) { a.setAttribute("aria-current", "page"); } else { a.removeAttribute("aria-current"); }
    });
    var ws = $("#workspace"); if (ws) { ws.dataset.open = id; }
  }
  function dedupe(box) {
    var seen = {}, kids = box.children, i;
    for (i = kids.length - 1; i >= 0; i--) {
      if (kids[i].id) { if (seen[kids[i].id]) { box.removeChild(kids[i]); } else { seen[kids[i].id] = 1; } }
    }
  }
  function nearBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 160; }
  function toBottom(box) { box.scrollTop = box.scrollHeight; }
  function offersCount() {
    var n = $$("#offers-list .offer").length, c = $("#offers-count"), sec = $("#offers");
    if (c) { c.textContent = n; }
    if (sec) { sec.hidden = n === 0; }
  }
  function conversationOpened() {
    markCurrent(); follow(); sendDraft();
    var box = $("#conversation .messages"); if (box) { toBottom(box); }
    var ta = composer(); if (ta) { count(ta); ta.focus(); }
  }
  function settled(target) {
    if (!target) { return; }
    if (target.id === "conversation") { conversationOpened(); }
    if (target.classList && (target.classList.contains("messages") || target.id === "chat-log")) {
      var stick = nearBottom(target); dedupe(target); if (stick) { toBottom(target); }
    }
    if (target.id === "inbox-list" || target.classList && target.classList.contains("item")) { markCurrent(); }
    if (target.id === "offers-list" || /^offer-/.test(target.id || "")) { offersCount(); }
    if (target.id === "live-sink") { offersCount(); markCurrent(); }  // app.js removed what it named
  }
  document.addEventListener("htmx:afterSwap", function (e) { settled(e.detail.target); });
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    var t = e.detail.target; settled(t);
    if (t && t.id === "messages-" + openId()) { markReadSoon(); customerWrote(t); }
  });
  // A customer's message (re)opens WhatsApp's 24 h window: the header's closing time moves; a composer
  // that offered only templates comes back with its text box.
  function customerWrote(box) {
    var last = box.lastElementChild, id = openId(), win = $("#window-" + id);
    if (!last || !last.classList.contains("customer") || !win) { return; }
    if ($("#conversation .composer[data-window=closed]")) {
      htmx.ajax("GET", "/inbox/" + id, { target: "#conversation", swap: "innerHTML" });
    } else {
      htmx.ajax("GET", "/inbox/" + id + "/window", { target: "#window-" + id, swap: "outerHTML" });
    }
  }
  function markReadSoon() {
    var form = $("#conversation .composer"); if (!form || readTimer) { return; }
    readTimer = setTimeout(function () {
      readTimer = null;
      var id = openId(); if (id) { htmx.ajax("POST", "/inbox/" + id + "/open", { source: form, swap: "none" }); }
    }, 1500);
  }

  // -- after requests: reset what was sent ---------------------------------------------------------
  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt, xhr = e.detail.xhr;
    if (!e.detail.successful || !elt || elt.tagName !== "FORM") { return; }
    var retarget = xhr && xhr.getResponseHeader("HX-Retarget");
    if (elt.classList.contains("composer") && !retarget) {
      var ta = elt.querySelector("textarea"), err = elt.querySelector(".composer-error");
      if (ta) { ta.value = ""; count(ta); ta.focus(); }
      if (err) { err.innerHTML = ""; }
      $$("input[type=file]", elt).forEach(function (f) { f.value = ""; });
      sendDraft();
    } else if (elt.classList.contains("softphone") && retarget === "#conversation") {
      elt.reset(); closePops();
    } else if (elt.classList.contains("chat-form")) {
      elt.reset();
    }
  });

  document.addEventListener("htmx:wsOpen", function (e) { sock = e.detail.socketWrapper; setTimeout(function () { follow(); sendDraft(); }, 0); });
  document.addEventListener("DOMContentLoaded", function () {
    markCurrent();
    var box = $("#conversation .messages"); if (box) { toBottom(box); }
    $$("textarea[data-segments]").forEach(count);
  });
})();
