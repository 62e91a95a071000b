/* Callwell browser dialer: a caller an agent hands over to the reps (handover kind "dialer reps").
 *
 * dialer.js fires "dialer-incoming" on the panel for every incoming call. Here we ask the server whether it is a
 * transfer ringing this rep (GET offer?call_sid=…, 404: an ordinary call, nothing changes). A transfer shows its
 * ringing card instead of the plain one: the caller, the agent's brief, the analysis fields and the transcript so
 * far (refreshed while it rings). Accept claims the caller first (POST accept: the first rep wins; another rep
 * already took it: the card says so) and only then answers the call through dialer.js (`acceptIncoming`), so it
 * becomes an ordinary dialer call. Decline tells the server, then rejects the call. The card stays during the call
 * (the brief at hand) and goes when the call ends.
 */
(function () {
  "use strict";

  var REFRESH_MS = 2000;
  var LOOKUPS = 3;
  var LOOKUP_RETRY_MS = 600;

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function post(url, data) {
    var body = new URLSearchParams(data);
    return fetch(url, { method: "POST", credentials: "same-origin", body: body,
                        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() } })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (b) { b.status = r.status; return b; }); });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function init() {
    var panel = document.getElementById("dialer");
    if (!panel || !panel.dataset.transferOfferUrl || panel.dataset.transferInitialised) return;
    panel.dataset.transferInitialised = "1";
    var incomingBox = panel.querySelector('[data-role="incoming"]');

    panel.addEventListener("dialer-incoming", function (e) {
      var call = e.detail && e.detail.call;
      var sid = call && call.parameters && call.parameters.CallSid;
      if (!sid) return;
      var url = panel.dataset.transferOfferUrl + "?call_sid=" + encodeURIComponent(sid);
      var tries = 0;
      var ended = false;
      call.on("cancel", function () { ended = true; });
      // The leg may ring a moment before the server stored which transfer it is: a 404 is asked again, briefly.
      (function ask() {
        tries += 1;
        fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
          if (r.status === 404 && tries < LOOKUPS && !ended) { setTimeout(ask, LOOKUP_RETRY_MS); return null; }
          return r.ok ? r.json() : null;
        }).then(function (offer) { if (offer && !ended) show(call, offer, url); }).catch(function () { /* plain card */ });
      })();
    });

    function show(call, offer, url) {
      var dialer = window.CallwellDialer;
      var card = el("div", { "class": "dialer-transfer", "data-testid": "dialer-transfer-card", role: "region",
                             "aria-label": "Transfer from an agent" });
      var head = el("p", { "class": "dialer-transfer-head" });
      var state = el("span", { "class": "dialer-transfer-state", "data-testid": "transfer-state" }, "Transfer from an agent");
      head.appendChild(state);
      var caller = el("p", { "data-testid": "transfer-caller" });
      var brief = el("p", { "class": "dialer-transfer-brief", "data-testid": "transfer-brief" });
      var fields = el("dl", { "class": "dialer-transfer-fields", "data-testid": "transfer-fields" });
      var transcript = el("ol", { "class": "dialer-transfer-transcript", "data-testid": "transfer-transcript" });
      var message = el("p", { "class": "dialer-transfer-message", "data-testid": "transfer-message", role: "alert" });
      var buttons = el("div", { "class": "dialer-actions" });
      var accept = el("button", { type: "button", "class": "primary", "data-testid": "transfer-accept" }, "Accept");
      var decline = el("button", { type: "button", "class": "danger", "data-testid": "transfer-decline" }, "Decline");
      buttons.appendChild(accept);
      buttons.appendChild(decline);
      [head, caller, brief, fields, transcript, message, buttons].forEach(function (n) { card.appendChild(n); });
      incomingBox.parentNode.insertBefore(card, incomingBox.nextSibling);
      incomingBox.hidden = true;
      if (dialer && dialer.hideIncoming) dialer.hideIncoming();

      var timer = null;
      var done = false;
      function render(o) {
        var who = o.caller_name ? o.caller_name + " (" + o.caller + ")" : o.caller;
        caller.textContent = "Caller: " + (who || "unknown") + (o.agent ? " · from " + o.agent : "");
        brief.textContent = o.brief || "";
        fields.textContent = "";
        var contact = o.contact || {};
        Object.keys(contact).forEach(function (k) {  // a campaign's contact: its fields
          fields.appendChild(el("dt", {}, k.replace(/_/g, " ")));
          fields.appendChild(el("dd", {}, String(contact[k])));
        });
        Object.keys(o.fields || {}).forEach(function (k) {
          fields.appendChild(el("dt", {}, k.replace(/_/g, " ")));
          var v = o.fields[k];
          fields.appendChild(el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v)));
        });
        transcript.textContent = "";
        (o.transcript || []).forEach(function (t) {
          transcript.appendChild(el("li", { "class": "role-" + t.role }, (t.role === "event" ? "" : t.role + ": ") + t.text));
        });
        if (o.state === "gone" && !done) {
          finish(o.taken_by ? o.taken_by + " took the call." : "The caller is no longer waiting.");
        }
      }
      function refresh() {
        fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
          return r.ok ? r.json() : null;
        }).then(function (o) { if (o && !done) render(o); }).catch(function () {});
      }
      function stopRefresh() { if (timer !== null) clearInterval(timer); timer = null; }
      function finish(text) {
        done = true;
        stopRefresh();
        message.textContent = text || "";
        buttons.hidden = true;
        setTimeout(function () { card.remove(); }, text ? 4000 : 0);
      }
      render(offer);
      timer = setInterval(refresh, REFRESH_MS);

      accept.addEventListener("click", function () {
        accept.disabled = decline.disabled = true;
        post(panel.dataset.transferAcceptUrl, { handover: offer.handover_id, attempt: offer.attempt }).then(function (b) {
          if (!b.ok) { finish(b.message || "Another rep took the call."); return; }
          stopRefresh();
          buttons.hidden = true;
          state.textContent = "In call with the caller (transferred)";
          card.dataset.state = "taken";
          if (!(dialer && dialer.acceptIncoming(call))) call.accept();
        }, function () { accept.disabled = decline.disabled = false; message.textContent = "Could not reach Callwell: try again."; });
      });
      decline.addEventListener("click", function () {
        accept.disabled = decline.disabled = true;
        post(panel.dataset.transferDeclineUrl, { handover: offer.handover_id, attempt: offer.attempt }).then(
          function () { call.reject(); finish(""); }, function () { call.reject(); finish(""); });
      });
      var ended = function (text) { return function () { if (!done) finish(text); else stopRefresh(); }; };
      call.on("cancel", ended("The caller is no longer waiting for you."));
      call.on("reject", ended(""));
      call.on("disconnect", function () { done = true; stopRefresh(); card.remove(); });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
