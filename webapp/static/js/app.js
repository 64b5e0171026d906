// Conversa: the little glue htmx does not do. No framework, no build.
(function () {
  "use strict";
  var body = function () { return document.body; };
  // Live state: polling fallbacks check `document.body.dataset.live` before they fire.
  document.addEventListener("htmx:wsOpen", function () { body().dataset.live = "on"; });
  document.addEventListener("htmx:wsClose", function () { body().dataset.live = "off"; });
  document.addEventListener("htmx:wsError", function () { body().dataset.live = "off"; });
  // The server ends a session (supervisor "log out agent"): go to sign-in.
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    var t = e.detail && e.detail.target;
    if (t && t.id === "live-control" && t.dataset.redirect) { window.location.href = t.dataset.redirect; }
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
  }, 1000);
  document.addEventListener("DOMContentLoaded", function () {
    var st = document.querySelector("meta[name=server-time]");
    if (st) { window.conversaClockSkew = Date.now() / 1000 - parseFloat(st.content); }
  });
  window.conversa = { fmt: fmt };
})();
