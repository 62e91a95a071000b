/* Callwell browser dialer: the panel (Cmd/Ctrl+D), the Twilio Voice SDK device, and its token scheduler.
 *
 * Token lifecycle (product doc "Token refresh"):
 *   - a token is fetched from GET /v1/voice/token when the dialer initialises (page load, workspace ready);
 *   - a refresh is scheduled 10 minutes before expiry, computed from the token's expires_at/issued_at
 *     (50 minutes after issue for a 60-minute token) and re-armed after every refresh, because the SDK's
 *     `tokenWillExpire` fires only once after `updateToken`;
 *   - `tokenWillExpire` and the token errors 20104 / 31205 also refresh;
 *   - a refresh is never applied during a call: it waits until the call ends.
 * Timers use the page's setTimeout/Date, so tests drive them with Playwright's clock.
 */
(function () {
  "use strict";

  var REFRESH_BEFORE_MS = 10 * 60 * 1000;
  var MIN_DELAY_MS = 30 * 1000;
  var RETRY_MS = 30 * 1000;
  var TOKEN_ERRORS = [20104, 31205];
  var CONNECT_TIMEOUT_MS = 20 * 1000;

  function createTokenScheduler(opts) {
    var timer = null;
    var deferred = false;
    var inflight = null;
    var stopped = false;
    var log = opts.log || function () {};

    function arm(delay, reason) {
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(function () { timer = null; refresh(reason); }, delay);
    }

    function schedule(tok) {
      var lifeMs = (tok.expires_at_epoch - tok.issued_at_epoch) * 1000;
      if (!(lifeMs > 0)) lifeMs = (tok.ttl || 3600) * 1000;
      arm(Math.max(MIN_DELAY_MS, lifeMs - REFRESH_BEFORE_MS), "timer");
    }

    function fetchAndApply(reason) {
      if (inflight) return inflight;
      inflight = opts.fetchToken().then(function (tok) {
        opts.applyToken(tok, reason);
        schedule(tok);
        return tok;
      }, function (err) {
        if (err && err.permanent) { stopped = true; log("token: giving up", err); throw err; }
        arm(err && err.retryAfterMs ? err.retryAfterMs : RETRY_MS, "retry");
        throw err;
      }).finally(function () { inflight = null; });
      return inflight;
    }

    function refresh(reason) {
      if (stopped) return Promise.resolve(null);
      if (opts.isCallActive()) {
        deferred = true;
        log("token: refresh deferred until the call ends (" + reason + ")");
        return Promise.resolve(null);
      }
      return fetchAndApply(reason || "refresh").catch(function () { return null; });
    }

    return {
      start: function () { return fetchAndApply("start"); },
      refresh: refresh,
      callEnded: function () {
        if (deferred && !opts.isCallActive()) { deferred = false; return refresh("deferred"); }
        return Promise.resolve(null);
      },
      isDeferred: function () { return deferred; },
      stop: function () { stopped = true; if (timer !== null) clearTimeout(timer); timer = null; }
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Number checks: a quick local pre-check; the server normalises to E.164 with the workspace's country.

  function precheckNumber(raw) {
    var value = (raw || "").trim();
    if (!value) return { ok: false, message: "Enter a number to call." };
    var compact = value.replace(/[\s\-().\/]/g, "");
    if (!/^\+?[0-9]{3,15}$/.test(compact)) {
      return { ok: false, message: "Use digits only, e.g. (512) 555-0100 or +15125550100." };
    }
    return { ok: true, value: compact };
  }

  function formatTimer(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }

  function init() {
    var panel = document.getElementById("dialer");
    if (!panel || panel.dataset.initialised) return null;
    panel.dataset.initialised = "1";
    var toggle = document.querySelector("[data-dialer-toggle]");
    var $ = function (role) { return panel.querySelector('[data-role="' + role + '"]'); };
    var numberInput = $("number");
    var numberError = $("number-error");
    var callFrom = $("call-from");
    var stateEl = $("state");
    var timerEl = $("timer");
    var errorEl = $("error");
    var callBtn = $("call");
    var hangupBtn = $("hangup");
    var muteBtn = $("mute");
    var incomingBox = $("incoming");
    var incomingFrom = $("incoming-from");
    var ready = panel.dataset.ready === "true";

    var device = null;
    var activeCall = null;
    var incomingCall = null;
    var timerHandle = null;
    var callSeconds = 0;
    var opened = false;
    var placing = false; // Call pressed, the SDK's connect() not settled yet

    function setState(text) { stateEl.textContent = text; panel.dataset.state = text; }
    function showError(text) { errorEl.textContent = text || ""; errorEl.hidden = !text; }

    function open() {
      panel.hidden = false;
      if (toggle) toggle.setAttribute("aria-expanded", "true");
      if (!opened) {
        opened = true;
        document.body.dispatchEvent(new CustomEvent("dialer-open", { bubbles: true }));
      }
      remember();
      connect();
      numberInput.focus();
    }
    function close() {
      panel.hidden = true;
      if (toggle) toggle.setAttribute("aria-expanded", "false");
    }
    function toggleOpen() { if (panel.hidden) open(); else close(); }

    document.addEventListener("keydown", function (e) {
      var key = (e.key || "").toLowerCase();
      if ((e.metaKey || e.ctrlKey) && !e.altKey && !e.shiftKey && key === "d") {
        e.preventDefault(); // the browser's "bookmark this page"
        toggleOpen();
      } else if (key === "escape" && !panel.hidden && !activeCall) {
        close();
      }
    }, true);
    if (toggle) toggle.addEventListener("click", toggleOpen);
    panel.querySelector("[data-dialer-close]").addEventListener("click", close);

    function updateButtons() {
      var inCall = !!activeCall;
      callBtn.disabled = !ready || inCall || !device || placing;
      hangupBtn.disabled = !inCall;
      muteBtn.disabled = !inCall;
      panel.classList.toggle("in-call", inCall);
    }

    function startTimer() {
      stopTimer();
      callSeconds = 0;
      timerEl.textContent = formatTimer(0);
      timerHandle = setInterval(function () { callSeconds += 1; timerEl.textContent = formatTimer(callSeconds); }, 1000);
    }
    function stopTimer() { if (timerHandle !== null) clearInterval(timerHandle); timerHandle = null; }

    // ---- token + device --------------------------------------------------------------------------------------
    function fetchToken() {
      return fetch(panel.dataset.tokenUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (body) {
            if (response.ok) return body;
            var err = new Error(body.message || ("Token request failed (" + response.status + ")"));
            err.status = response.status;
            err.permanent = response.status === 401 || response.status === 403 || response.status === 409;
            if (response.status === 429) err.retryAfterMs = (parseInt(response.headers.get("Retry-After"), 10) || 30) * 1000;
            if (body.banner) err.message = body.banner + ": " + (body.message || "");
            throw err;
          });
        });
    }

    function applyToken(tok, reason) {
      panel.dataset.identity = tok.identity;
      panel.dataset.tokenExpiresAt = tok.expires_at;
      if (device === null) {
        createDevice(tok.token, tok.chunderw);
      } else {
        device.updateToken(tok.token);
      }
      updateButtons();
    }

    var scheduler = createTokenScheduler({
      fetchToken: fetchToken,
      applyToken: applyToken,
      isCallActive: function () { return activeCall !== null; },
      log: function () { if (window.console && console.debug) console.debug.apply(console, arguments); }
    });

    function createDevice(token, chunderw) {
      if (!window.Twilio || !window.Twilio.Device) { showError("The voice library did not load; reload the page."); return; }
      var options = { closeProtection: true, codecPreferences: ["opus", "pcmu"] };
      if (chunderw) {
        // The local Twilio sandbox answers the SDK's signalling (the token says where; never in production).
        // Insights events have no gateway offline.
        options.chunderw = chunderw;
        options.publishEvents = false;
      }
      device = new window.Twilio.Device(token, options);
      device.on("tokenWillExpire", function () { scheduler.refresh("tokenWillExpire"); });
      device.on("error", function (err) {
        var code = err && err.code;
        if (TOKEN_ERRORS.indexOf(code) !== -1) { scheduler.refresh("error " + code); return; }
        showError((err && err.message) || "The dialer had an error.");
        // Recover: a Call pressed before the error is given up, and the panel no longer claims "Ready";
        // the next "registered" (the connection is back) makes it ready again.
        placing = false;
        if (!activeCall) setState("Offline");
        updateButtons();
      });
      device.on("registered", function () {
        if (activeCall) return;
        setState("Ready");
        showError("");
        updateButtons();
      });
      device.on("unregistered", function () { if (!activeCall) setState("Offline"); });
      device.on("incoming", onIncoming);
      if (typeof device.register === "function") {
        var registering = device.register();
        if (registering && registering.catch) registering.catch(function (err) {
          showError("Could not register the dialer: " + ((err && err.message) || err));
          placing = false;
          if (!activeCall) setState("Offline");
          updateButtons();
        });
        setState("Connecting…"); // "Ready" once the SDK says "registered"
      } else {
        setState("Ready");
      }
    }

    // ---- calls -----------------------------------------------------------------------------------------------
    function bindCall(call, label, params) {
      activeCall = call;
      setState(label);
      updateButtons();
      // Hook for static/dialer/power.js (wrap-up card, power dialer): every call the panel binds, with the app's
      // own parameters of a call placed by `place` (a supervisor's coaching call has nothing to wrap up).
      panel.dispatchEvent(new CustomEvent("dialer:call", { detail: { call: call, params: params || {} } }));
      call.on("ringing", function () { setState("Ringing…"); });
      call.on("accept", function () { setState("In call"); startTimer(); });
      call.on("mute", function (isMuted) { muteBtn.textContent = isMuted ? "Unmute" : "Mute"; muteBtn.setAttribute("aria-pressed", String(!!isMuted)); });
      var ended = function (label) {
        return function (err) {
          if (activeCall !== call) return;
          activeCall = null;
          stopTimer();
          setState(label);
          if (err && err.message && label === "Call failed") showError(err.message);
          muteBtn.textContent = "Mute";
          updateButtons();
          scheduler.callEnded();
        };
      };
      call.on("disconnect", ended("Call ended"));
      call.on("cancel", ended("Call canceled"));
      call.on("reject", ended("Call rejected"));
      call.on("error", ended("Call failed"));
    }

    function normalise(number) {
      var url = panel.dataset.normalizeUrl + "?number=" + encodeURIComponent(number);
      return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.message || "That number is not valid.");
          return body.e164;
        });
      });
    }

    function placeCall(extraParams) {
      showError("");
      var check = precheckNumber(numberInput.value);
      numberError.textContent = check.ok ? "" : check.message;
      if (!check.ok || !device || activeCall || placing) return null;
      placing = true;
      updateButtons();
      // The SDK may never settle connect() while its signalling is unreachable: give up after a while so Call can
      // be pressed again (a call that still comes through is bound when it does).
      var giveUp = setTimeout(function () {
        if (!placing) return;
        placing = false;
        showError("Twilio did not answer the call request: check the connection, then press Call again.");
        if (!activeCall) setState("Offline");
        updateButtons();
      }, CONNECT_TIMEOUT_MS);
      return normalise(check.value).then(function (e164) {
        numberInput.value = e164;
        var params = Object.assign({ To: e164, CallerId: callFrom.value || "auto" }, extraParams || {});
        return Promise.resolve(device.connect({ params: params })).then(function (call) {
          clearTimeout(giveUp);
          placing = false;
          bindCall(call, "Calling " + e164 + "…");
          return call;
        });
      }).catch(function (err) {
        clearTimeout(giveUp);
        placing = false;
        numberError.textContent = err.message;
        updateButtons();
        throw err;
      });
    }

    // Hook for power.js: call a number with a given caller ID ("auto" for the workspace's rule).
    function dial(number, callerId, extraParams) {
      numberInput.value = number;
      var placed = placeCall(Object.assign({ CallerId: callerId || "auto" }, extraParams || {}));
      return placed || Promise.reject(new Error("The dialer is not ready to call."));
    }

    function onIncoming(call) {
      if (activeCall) { call.reject(); return; }
      incomingCall = call;
      var from = (call.parameters && call.parameters.From) || "Unknown caller";
      incomingFrom.textContent = from;
      incomingBox.hidden = false;
      open();
      var clear = function () { if (incomingCall === call) { incomingCall = null; incomingBox.hidden = true; } };
      call.on("cancel", clear);
      call.on("disconnect", clear);
      call.on("reject", clear);
      // Hook: a transfer from an agent (static/dialer/transfer.js) shows its own ringing card.
      panel.dispatchEvent(new CustomEvent("dialer-incoming", { detail: { call: call } }));
    }

    function acceptIncoming(call) {
      if (!call || incomingCall !== call) return false;
      incomingCall = null;
      incomingBox.hidden = true;
      bindCall(call, "Connecting…");
      call.accept();
      return true;
    }

    $("accept").addEventListener("click", function () {
      if (!incomingCall) return;
      var call = incomingCall;
      incomingCall = null;
      incomingBox.hidden = true;
      bindCall(call, "Connecting…");
      call.accept();
    });
    $("decline").addEventListener("click", function () {
      if (!incomingCall) return;
      incomingCall.reject();
      incomingCall = null;
      incomingBox.hidden = true;
    });

    function placeTyped() { var placed = placeCall(); if (placed) placed.catch(function () {}); }
    callBtn.addEventListener("click", placeTyped);
    numberInput.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); placeTyped(); } });
    hangupBtn.addEventListener("click", function () { if (activeCall) activeCall.disconnect(); });
    muteBtn.addEventListener("click", function () {
      if (!activeCall) return;
      var muted = !activeCall.isMuted();
      activeCall.mute(muted);
      muteBtn.textContent = muted ? "Unmute" : "Mute";
      muteBtn.setAttribute("aria-pressed", String(muted));
    });
    Array.prototype.forEach.call(panel.querySelectorAll("[data-digit]"), function (button) {
      button.addEventListener("click", function () {
        var digit = button.dataset.digit;
        if (activeCall) { activeCall.sendDigits(digit); return; } // DTMF during a call
        numberInput.value += digit;
        numberInput.focus();
      });
    });

    // The Voice SDK registers only where the dialer is used: on the dialer's own pages, once the rep opened the
    // panel (remembered for the browser tab, so calls ring on the next pages too), never on the others.
    var USED_KEY = "callwell-dialer-used";
    var connecting = false;
    function remember() { try { window.sessionStorage.setItem(USED_KEY, "1"); } catch (e) { /* private mode */ } }
    function usedBefore() { try { return window.sessionStorage.getItem(USED_KEY) === "1"; } catch (e) { return false; } }
    function connect() {
      if (!ready || connecting) return;
      connecting = true;
      setState("Connecting…");
      scheduler.start().catch(function (err) { setState("Offline"); showError(err.message); });
    }

    updateButtons();
    if (!ready) {
      setState("Not ready");
    } else if (document.querySelector("[data-dialer-page]") || usedBefore()) {
      connect();
    } else {
      setState("Idle");
    }

    var api = {
      open: open, close: close, scheduler: scheduler,
      device: function () { return device; },
      activeCall: function () { return activeCall; },
      dial: dial, panel: panel,
      acceptIncoming: acceptIncoming,
      hideIncoming: function () { incomingBox.hidden = true; },
      // A call with the app's own parameters (static/dialer/coaching.js: a supervisor joins a rep's call).
      place: function (params, label) {
        if (!device || activeCall || placing) return Promise.reject(new Error(device ? "Hang up your own call first." : "The dialer is not connected yet."));
        return Promise.resolve(device.connect({ params: params })).then(function (call) { bindCall(call, label, params); return call; });
      },
      precheckNumber: precheckNumber
    };
    window.CallwellDialer = api;
    return api;
  }

  window.CallwellDialerLib = { createTokenScheduler: createTokenScheduler, precheckNumber: precheckNumber, formatTimer: formatTimer };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
