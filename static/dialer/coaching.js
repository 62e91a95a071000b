/* Coaching on reps' dialer calls (dialer/coaching.py).
 *
 * Supervisor (the Live calls page, refreshed every 5 s while not coaching): Listen / Whisper / Barge in on a row starts coaching (POST …/coach), then the
 * supervisor's own dialer places a call with the parameter Coaching=<id>, which Twilio puts in the call's conference;
 * another mode while on the call changes it (POST …/mode); Leave hangs up.
 * Rep (every page with the dialer): during a call, who is listening, whispering or in the call, every 2 seconds.
 * Uses only window.CallwellDialer's activeCall() and place(). */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var REFRESH_MS = 5000;

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch (e) { return ""; }
  }

  function post(url, data) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(data).toString()
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.message || "The server refused (" + r.status + ").");
        return body;
      });
    });
  }

  // ---- the rep: who is on my call ---------------------------------------------------------------------------
  function watchRep() {
    var script = document.querySelector("script[data-coaching-url]");
    var line = document.querySelector('#dialer [data-role="coaching"]');
    if (!script || !line) return;
    var url = script.dataset.coachingUrl;
    function show(items) {
      if (!items.length) { line.hidden = true; line.textContent = ""; return; }
      line.textContent = items.map(function (c) {
        return c.supervisor + (c.mode === "listen" ? " is listening" : c.mode === "whisper" ? " is whispering to you" : " joined the call");
      }).join(" · ");
      line.hidden = false;
    }
    setInterval(function () {
      var dialer = window.CallwellDialer;
      if (!dialer || !dialer.activeCall()) { show([]); return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { coaching: [] }; })
        .then(function (body) { if (window.CallwellDialer.activeCall()) show(body.coaching || []); })
        .catch(function () { /* the next poll tries again */ });
    }, POLL_MS);
  }

  // ---- the supervisor: the Live calls page -------------------------------------------------------------------
  function supervise() {
    var table = document.querySelector('[data-testid="live-calls-region"]');
    if (!table) return;
    var modeUrl = table.getAttribute("data-mode-url");
    var errorEl = document.querySelector('[data-testid="coaching-error"]');
    var current = null; // {id, row, call}
    var starting = false;

    function showError(text) { errorEl.textContent = text || ""; errorEl.hidden = !text; }
    function mark(row, mode, text) {
      Array.prototype.forEach.call(table.querySelectorAll("[data-coach-mode]"), function (b) {
        b.setAttribute("aria-pressed", String(b.closest("tr") === row && b.dataset.coachMode === mode));
      });
      Array.prototype.forEach.call(table.querySelectorAll("[data-coach-leave]"), function (b) { b.hidden = b.closest("tr") !== row || !mode; });
      Array.prototype.forEach.call(table.querySelectorAll("[data-coach-state]"), function (s) { s.textContent = s.closest("tr") === row ? (text || "") : ""; });
    }

    function start(row, mode) {
      var dialer = window.CallwellDialer;
      if (!dialer || !dialer.device()) { showError("Your dialer is not connected yet: wait for Ready."); return; }
      starting = true;
      post(row.querySelector("[data-coach-mode]").dataset.startUrl, { mode: mode }).then(function (body) {
        return dialer.place({ Coaching: String(body.id) }, "Joining the call…").then(function (call) {
          current = { id: body.id, row: row, call: call };
          mark(row, mode, "Joining…");
          call.on("accept", function () { if (current && current.call === call) mark(row, mode, "On the call"); });
          var gone = function () { if (current && current.call === call) { current = null; mark(null, null); } };
          call.on("disconnect", gone); call.on("cancel", gone); call.on("error", gone);
        });
      }).catch(function (err) { showError(err.message); }).finally(function () { starting = false; });
    }

    function change(mode, attempt) {
      var target = current;
      post(modeUrl.replace(/\/0\/mode$/, "/" + target.id + "/mode"), { mode: mode }).then(function () {
        if (current === target) mark(target.row, mode, "On the call");
      }).catch(function (err) {
        if (/Still joining/.test(err.message) && (attempt || 0) < 10) { setTimeout(function () { change(mode, (attempt || 0) + 1); }, 500); return; }
        showError(err.message);
      });
    }

    // The list follows the reps' calls while the supervisor is on none of them.
    setInterval(function () {
      if (current || starting) return;
      fetch(window.location.href, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
        if (!html || current || starting) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector('[data-testid="live-calls-region"]');
        if (fresh) table.innerHTML = fresh.innerHTML;
      }).catch(function () { /* the next refresh tries again */ });
    }, REFRESH_MS);

    table.addEventListener("click", function (e) {
      var button = e.target.closest("button");
      if (!button) return;
      showError("");
      var row = button.closest("tr");
      if (button.hasAttribute("data-coach-leave")) { if (current) current.call.disconnect(); return; }
      var mode = button.dataset.coachMode;
      if (!mode) return;
      if (current && current.row === row) change(mode);
      else if (current) showError("Leave the other call first.");
      else start(row, mode);
    });
  }

  function init() { watchRep(); supervise(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
