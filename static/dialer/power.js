/* Callwell power dialer and after-call card (dialer/templates/dialer/_power_dialer.html).
 *
 * After every dialer call the rep picks a disposition and writes notes (POST /v1/voice/calls/<sid>/disposition).
 * Power dialer: the rep picks a running campaign worked by reps and clicks Start; the next due contact is claimed
 * on the server (POST /v1/power/campaigns/<id>/next: the scheduler's leased claim, the calling window, the attempt
 * counted), its card shows (name, fields, past attempts with notes) and it is dialled with the campaign's caller
 * ID; the CallSid is reported (…/dialled). After the call the disposition and notes close the attempt
 * (…/finish); Save takes the next contact, "Save and stop" ends the session. "Drop voicemail" during a call plays
 * the workspace's message to the machine (the callee's leg is redirected) and frees the rep at once.
 * Hooks into dialer.js: the panel's "dialer:call" event and window.CallwellDialer.dial().
 */
(function () {
  "use strict";

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function request(url, body) {
    var options = { credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body) {
      options.method = "POST";
      options.headers["X-CSRFToken"] = csrfToken();
      options.body = new URLSearchParams(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.message || ("The request failed (" + response.status + ")."));
        return data;
      });
    });
  }

  function init() {
    var root = document.querySelector('#dialer [data-role="power"]');
    var dialer = window.CallwellDialer;
    if (!root || !dialer || root.dataset.initialised) return;
    root.dataset.initialised = "1";
    var panel = dialer.panel;
    var $ = function (role) { return root.querySelector('[data-role="' + role + '"]'); };
    var startBox = $("power-start"), campaignSelect = $("power-campaign"), goBtn = $("power-go");
    var statusEl = $("power-status"), card = $("power-card"), dropBtn = $("power-drop");
    var wrap = $("power-wrap"), dispositionSelect = $("power-disposition"), notes = $("power-notes");
    var errorEl = $("power-error"), saveBtn = $("power-save"), stopBtn = $("power-stop");

    var dispositions = [];
    var hasMessage = false;
    var session = null;   // {campaign: id} while the rep works a campaign
    var attempt = null;   // the contact being worked: the server's card
    var current = null;   // {call, sid, dropped, ended}
    var wrapping = null;  // the call being wrapped up

    function url(name, id) { return root.dataset[name].replace(/\/0\//, "/" + id + "/").replace(/\/0$/, "/" + id).replace("CALLSID", id); }
    function status(text) { statusEl.textContent = text || ""; }
    function callSid(call) { return (call && call.parameters && call.parameters.CallSid) || ""; }

    function loadOptions() {
      request(root.dataset.wrapUpUrl).then(function (data) {
        dispositions = data.dispositions || [];
        hasMessage = !!data.voicemail_message;
        dispositionSelect.innerHTML = '<option value="">Choose…</option>';
        dispositions.forEach(function (d) {
          var option = document.createElement("option");
          option.value = d.id; option.textContent = d.name; option.dataset.key = d.key;
          dispositionSelect.appendChild(option);
        });
      }).catch(function () {});
      request(root.dataset.campaignsUrl).then(function (data) {
        var campaigns = data.campaigns || [];
        campaignSelect.innerHTML = "";
        campaigns.forEach(function (c) {
          var option = document.createElement("option");
          option.value = c.id; option.textContent = c.name;
          campaignSelect.appendChild(option);
        });
        startBox.hidden = campaigns.length === 0 || !!session;
      }).catch(function () {});
    }

    function showCard(data) {
      var contact = data.contact;
      $("power-name").textContent = contact.name || "(no name)";
      $("power-number").textContent = contact.phone_number;
      $("power-attempt").textContent = "attempt " + data.number + " of " + data.max_attempts;
      var fields = $("power-fields");
      fields.innerHTML = "";
      Object.keys(contact.fields || {}).forEach(function (key) {
        var dt = document.createElement("dt"), dd = document.createElement("dd");
        dt.textContent = key.replace(/_/g, " "); dd.textContent = contact.fields[key];
        fields.appendChild(dt); fields.appendChild(dd);
      });
      var history = $("power-history");
      history.innerHTML = "";
      (data.history || []).forEach(function (h) {
        var li = document.createElement("li");
        li.textContent = "#" + h.number + " " + h.started_at.slice(0, 16).replace("T", " ") + " " +
          (h.disposition || h.outcome) + (h.rep ? " (" + h.rep + ")" : "") + (h.notes ? ": " + h.notes : "");
        history.appendChild(li);
      });
      if (!(data.history || []).length) {
        var none = document.createElement("li"); none.className = "muted"; none.textContent = "First attempt.";
        history.appendChild(none);
      }
      card.hidden = false;
    }

    function next() {
      if (!session) return;
      attempt = null;
      status("Finding the next contact…");
      request(url("nextUrl", session.campaign), {}).then(function (data) {
        if (data.done) { stop(data.message); return; }
        attempt = data;
        showCard(data);
        status("Calling " + (data.contact.name || data.contact.phone_number) + "…");
        return dialer.dial(data.contact.phone_number, data.caller_id || "auto").catch(function (err) {
          var failed = attempt;
          attempt = null;
          request(url("releaseUrl", failed.attempt), {}).catch(function () {});
          stop("The call could not be placed: " + err.message);
        });
      }).catch(function (err) { stop(err.message); });
    }

    function stop(message) {
      session = null;
      root.dataset.session = "";
      stopBtn.hidden = true;
      saveBtn.textContent = "Save";
      card.hidden = !attempt;
      status(message || "Stopped.");
      loadOptions();
    }

    goBtn.addEventListener("click", function () {
      if (!campaignSelect.value || session || dialer.activeCall()) return;
      session = { campaign: campaignSelect.value };
      root.dataset.session = session.campaign;
      startBox.hidden = true;
      wrap.hidden = true;
      stopBtn.hidden = false;
      saveBtn.textContent = "Save and next";
      next();
    });

    // Every call the panel binds (dialer.js hook): the drop button while it lasts, the wrap-up card after it.
    panel.addEventListener("dialer:call", function (e) {
      if (e.detail.params && e.detail.params.Coaching) return; // a supervisor's coaching call: no disposition
      var call = e.detail.call;
      var mine = { call: call, sid: "", dropped: false, ended: false, attempt: attempt };
      current = mine;
      wrap.hidden = true;
      var report = function () {
        mine.sid = callSid(call) || mine.sid;
        if (mine.attempt && mine.sid && !mine.reported) {
          mine.reported = true;
          request(url("dialledUrl", mine.attempt.attempt), { call_sid: mine.sid }).catch(function () { mine.reported = false; });
        }
      };
      call.on("ringing", report);
      var outgoing = call.direction !== "INCOMING"; // a voicemail is dropped on the callee of an outbound call
      call.on("accept", function () { report(); dropBtn.hidden = !(hasMessage && outgoing); });
      var ended = function () {
        if (mine.ended) return;
        mine.ended = true;
        report();
        dropBtn.hidden = true;
        if (current === mine) current = null;
        if (mine.attempt && !mine.sid) { neverPlaced(mine.attempt); return; }
        if (mine.sid) wrapUp(mine); // a call Twilio never knew has nothing to wrap up
      };
      ["disconnect", "cancel", "reject", "error"].forEach(function (name) { call.on(name, ended); });
    });

    dropBtn.addEventListener("click", function () {
      var mine = current;
      if (!mine) return;
      mine.sid = callSid(mine.call) || mine.sid;
      dropBtn.disabled = true;
      request(url("dropUrl", mine.sid), {}).then(function () {
        mine.dropped = true;
        status("Voicemail dropped: the message plays to the machine.");
        if (dialer.activeCall() === mine.call) mine.call.disconnect(); // the rep is free at once
      }).catch(function (err) { status(err.message); }).finally(function () { dropBtn.disabled = false; });
    });

    // The contact's call failed before Twilio knew it (no CallSid): nobody was called, so there is nothing to
    // disposition. The contact goes back to the queue and the attempt does not count; the rep is told and stops.
    function neverPlaced(failed) {
      if (attempt === failed) { attempt = null; card.hidden = true; }
      var who = failed.contact.name || failed.contact.phone_number;
      request(url("releaseUrl", failed.attempt), {}).catch(function () {});
      stop("The call to " + who + " never reached the phone network, so nobody was called: the contact goes " +
           "back to the queue and this attempt does not count. Check your microphone and connection, then Start again.");
    }

    function wrapUp(mine) {
      wrapping = mine;
      errorEl.textContent = "";
      notes.value = "";
      dispositionSelect.value = "";
      if (mine.dropped) {
        var left = dispositions.filter(function (d) { return d.key === "left_voicemail"; })[0];
        if (left) dispositionSelect.value = String(left.id);
      }
      wrap.hidden = false;
      if (mine.attempt) status("How did it go with " + (mine.attempt.contact.name || mine.attempt.contact.phone_number) + "?");
      dispositionSelect.focus();
    }

    function save(andStop) {
      var mine = wrapping;
      if (!mine) return;
      if (!dispositionSelect.value) { errorEl.textContent = "Pick a disposition."; return; }
      var body = { disposition: dispositionSelect.value, notes: notes.value, call_sid: mine.sid };
      var done = mine.attempt
        ? request(url("finishUrl", mine.attempt.attempt), body)
        : request(url("dispositionUrl", mine.sid), body);
      saveBtn.disabled = stopBtn.disabled = true;
      done.then(function (data) {
        wrapping = null;
        wrap.hidden = true;
        if (mine.attempt && data && data.released) { // never placed after all: given back, not counted
          attempt = null;
          card.hidden = true;
          stop(data.message);
        } else if (mine.attempt) {
          attempt = null;
          card.hidden = true;
          if (andStop || !session) stop("Stopped. Saved: " + dispositionSelect.selectedOptions[0].textContent + ".");
          else next();
        } else {
          status("Saved: " + dispositionSelect.selectedOptions[0].textContent + ".");
        }
      }).catch(function (err) { errorEl.textContent = err.message; })
        .finally(function () { saveBtn.disabled = stopBtn.disabled = false; });
    }

    wrap.addEventListener("submit", function (e) { e.preventDefault(); save(false); });
    stopBtn.addEventListener("click", function () { save(true); });

    document.body.addEventListener("dialer-open", loadOptions);
    if (!panel.hidden || document.querySelector("[data-dialer-page]")) loadOptions();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
