// mexc-paper dashboard: live updates by polling, and confirmations. No library, no CDN.
(function () {
  "use strict";

  // the account picker switches on change (a button is shown when scripts are off)
  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });

  // forms with data-confirm ask first; the server also requires confirm=yes
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      var field = form.querySelector("input[name=confirm]");
      if (field && field.value === "yes") { return; }
      ev.preventDefault();
      if (window.confirm(form.dataset.confirm)) {
        if (field) { field.value = "yes"; }
        form.submit();
      }
    });
  });

  var body = document.body;
  var url = body.dataset.poll;
  if (!url) { return; }
  var status = document.getElementById("live-status");
  var last = {};
  var failures = 0;

  function setMode(mode, bannerHtml) {
    if (mode !== body.dataset.mode) {
      body.classList.remove(body.dataset.mode);
      body.classList.add(mode);
      body.dataset.mode = mode;
      document.title = (mode === "paper" ? "PAPER" : "LIVE") + " · mexc-paper";
    }
    var banner = document.getElementById("mode-banner");
    if (banner && bannerHtml && last.banner !== bannerHtml) {
      banner.outerHTML = bannerHtml;
      last.banner = bannerHtml;
    }
  }

  function apply(state) {
    setMode(state.mode, state.banner);
    Object.keys(state.html).forEach(function (name) {
      var html = state.html[name];
      if (last[name] === html) { return; }
      var el = document.querySelector('[data-section="' + name + '"]');
      if (el) { el.innerHTML = html; }  // server-rendered, autoescaped HTML
      last[name] = html;
    });
  }

  function tick() {
    fetch(url, { cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (state) {
        apply(state);
        failures = 0;
        status.className = "ok";
        status.textContent = "live, updated " + new Date().toLocaleTimeString();
      })
      .catch(function (err) {
        failures += 1;
        status.className = "err";
        status.textContent = "updates paused (" + err.message + "), retrying";
      })
      .then(function () {
        var delay = failures ? Math.min(10000, 1000 * Math.pow(2, failures)) : 1000;
        if (document.hidden) { delay = Math.max(delay, 5000); }
        window.setTimeout(tick, delay);
      });
  }

  window.setTimeout(tick, 1000);
}());
