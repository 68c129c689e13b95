// mexc-paper dashboard: live updates by polling, and confirmations. No library, no CDN.
(function () {
  "use strict";

  // the account picker switches on change (a button is shown when scripts are off)
  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });

  // forms with data-confirm ask first, in the page's own dialog (red for a switch to
  // live); the server also requires confirm=yes and asks on a page of its own without it
  var dialog = document.getElementById("confirm-dialog");
  var pending = null;

  function ask(form, go) {
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(form.dataset.confirm)) { go(); }
      return;
    }
    var kind = form.dataset.confirmKind || "warn";
    dialog.className = kind;
    document.getElementById("confirm-title").textContent = form.dataset.confirmTitle || "Are you sure?";
    document.getElementById("confirm-message").textContent = form.dataset.confirm;
    var ok = document.getElementById("confirm-ok");
    ok.textContent = form.dataset.confirmOk || "Yes, do it";
    ok.className = kind;
    pending = go;
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();  // the safe choice is the default
  }

  if (dialog) {
    document.getElementById("confirm-ok").addEventListener("click", function () {
      var go = pending;
      pending = null;
      dialog.close("ok");
      if (go) { go(); }
    });
    document.getElementById("confirm-cancel").addEventListener("click", function () {
      pending = null;
      dialog.close("cancel");
    });
    dialog.addEventListener("cancel", function () { pending = null; });  // Escape
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      var field = form.querySelector("input[name=confirm]");
      if (field && field.value === "yes") { return; }
      ev.preventDefault();
      ask(form, function () {
        if (field) { field.value = "yes"; }
        form.submit();
      });
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
      if (el) {
        // keep the audit-log details someone opened open across the re-render
        var open = Array.prototype.map.call(el.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        el.innerHTML = html;  // server-rendered, autoescaped HTML
        open.forEach(function (id) {
          var d = document.getElementById(id);
          if (d) { d.open = true; }
        });
      }
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
