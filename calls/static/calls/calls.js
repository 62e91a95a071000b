// Calls in Studio: the live view (/v1/studio/calls/live) and listen & intervene (/v1/studio/calls/<id>/listen).
// Listening: binary messages are [track byte (0 caller, 1 agent)][μ-law 8 kHz bytes]; decoded to PCM here and
// played with the Web Audio API, each side on its own schedule (a late frame never builds up delay: resync).
(function () {
  "use strict";

  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  // G.711 μ-law → 16-bit linear, as a table.
  var ULAW = new Float32Array(256);
  (function () {
    for (var i = 0; i < 256; i++) {
      var u = ~i & 0xff, sign = u & 0x80, exponent = (u >> 4) & 0x07, mantissa = u & 0x0f;
      var magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
      ULAW[i] = (sign ? -magnitude : magnitude) / 32768;
    }
  })();

  function text(el, value) { if (el) el.textContent = value; }

  // ------------------------------------------------------------------ live view
  function live() {
    var body = document.getElementById("live-calls-body");
    if (!body) return;
    var empty = document.getElementById("live-empty");
    var state = document.getElementById("live-state");
    var callUrl = body.dataset.callUrl;

    function refreshStats() {
      if (window.htmx) window.htmx.trigger(document.body, "refresh-stats");
    }
    function row(id) { return body.querySelector('tr[data-call-id="' + id + '"]'); }
    function showEmpty() { if (empty) empty.hidden = body.children.length > 0; }

    function addRow(call) {
      if (row(call.id)) return;
      var tr = document.createElement("tr");
      tr.dataset.callId = call.id;
      var started = call.started_at ? new Date(call.started_at).toLocaleTimeString() : "";
      [started, call.from || "", call.to || "", call.connector || (call.direction === "outbound-api" ? "Outbound call" : ""), (call.agent || "") + " " + (call.version || "")]
        .forEach(function (v, i) {
          var td = document.createElement("td");
          if (i === 1 || i === 2) td.className = "mono";
          td.textContent = v;
          tr.appendChild(td);
        });
      var last = document.createElement("td");
      last.className = "last-turn";
      tr.appendChild(last);
      var transfer = document.createElement("td");
      transfer.className = "transfer";
      transfer.dataset.testid = "transfer-progress";
      tr.appendChild(transfer);
      var open = document.createElement("td");
      var a = document.createElement("a");
      a.href = callUrl.replace("/0/", "/" + call.id + "/");
      a.textContent = "Open · listen";
      a.dataset.testid = "open-call";
      open.appendChild(a);
      tr.appendChild(open);
      body.insertBefore(tr, body.firstChild);
      showEmpty();
    }

    // A transfer to the dialer's reps (calls.services.rep_transfers): waiting, ringing whom, taken / not taken.
    // The agent's stream has ended by then, so the row is added back while the caller waits.
    function transferProgress(ev) {
      if (ev.state === "ended") { var gone = row(ev.call_id); if (gone) gone.remove(); showEmpty(); return; }
      if (!row(ev.call_id) && ev.call) addRow(ev.call);
      var tr = row(ev.call_id);
      var cell = tr && tr.querySelector(".transfer");
      if (!cell) return;
      cell.textContent = "";
      var pill = document.createElement("span");
      pill.className = "pill " + (ev.state === "taken" ? "ok" : ev.state === "declined" ? "err" : "warn");
      pill.dataset.state = ev.state;
      pill.textContent = ev.text;
      cell.appendChild(pill);
    }

    function connect() {
      var ws = new WebSocket(wsUrl("/v1/studio/calls/live"));
      ws.onopen = function () { text(state, "live"); state.className = "pill ok"; };
      ws.onclose = function () {
        text(state, "reconnecting…"); state.className = "pill warn";
        setTimeout(connect, 2000);
      };
      ws.onmessage = function (e) {
        var ev = JSON.parse(e.data);
        if (ev.kind === "start") { addRow(ev.call); refreshStats(); }
        else if (ev.kind === "turn") {
          var tr = row(ev.call_id);
          if (tr) text(tr.querySelector(".last-turn"), (ev.role === "event" ? "" : ev.role + ": ") + ev.text);
        } else if (ev.kind === "handover") { refreshStats(); }
        else if (ev.kind === "transfer") { transferProgress(ev); }
        else if (ev.kind === "end") {
          var r = row(ev.call_id);
          if (r) r.remove();
          showEmpty();
          refreshStats();
        }
      };
    }
    connect();
  }

  // ------------------------------------------------------------------ listen & intervene
  function listen() {
    var panel = document.getElementById("listen-panel");
    if (!panel) return;
    var startBtn = document.getElementById("listen-start");
    var stopBtn = document.getElementById("listen-stop");
    var state = document.getElementById("listen-state");
    var controls = document.getElementById("intervene");
    var result = document.getElementById("iv-result");
    var transcript = document.getElementById("transcript");
    var ws = null, audio = null, next = [0, 0], speaking = null;

    function addTurn(role, words, heard) {
      var emptyItem = transcript.querySelector(".empty");
      if (emptyItem) emptyItem.remove();
      if (speaking) { speaking.remove(); speaking = null; }
      var li = document.createElement("li");
      li.className = "turn turn-" + role + (heard === false ? " turn-cut" : "");
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = role === "event" ? "·" : role.charAt(0).toUpperCase() + role.slice(1);
      var t = document.createElement("span");
      t.className = "text";
      t.textContent = " " + words;
      li.appendChild(who);
      li.appendChild(t);
      transcript.appendChild(li);
      li.scrollIntoView({block: "nearest"});
    }

    function addIntervention(ev) {
      var table = document.getElementById("interventions");
      if (!table) return;
      var tr = document.createElement("tr");
      [ev.at, ev.by, ev.label, ev.detail, ev.result].forEach(function (value) {
        var td = document.createElement("td");
        td.textContent = value || "";
        tr.appendChild(td);
      });
      table.querySelector("tbody").appendChild(tr);
      table.hidden = false;
      var none = document.getElementById("no-interventions");
      if (none) none.hidden = true;
    }

    function play(data) {
      if (!audio) return;
      var track = data[0] ? 1 : 0, n = data.length - 1;
      if (n <= 0) return;
      var buffer = audio.createBuffer(1, n, 8000), ch = buffer.getChannelData(0);
      for (var i = 0; i < n; i++) ch[i] = ULAW[data[i + 1]];
      var src = audio.createBufferSource();
      src.buffer = buffer;
      src.connect(audio.destination);
      var now = audio.currentTime, at = next[track];
      if (at < now + 0.04 || at > now + 0.4) at = now + 0.06;  // start, gap or backlog: resync
      src.start(at);
      next[track] = at + buffer.duration;
    }

    function stop() {
      if (ws) { ws.onclose = null; ws.close(); ws = null; }
      if (audio) { audio.close(); audio = null; }
      startBtn.hidden = false; stopBtn.hidden = true; controls.hidden = true;
      text(state, "Not listening.");
    }

    function ended(message) {
      if (ws) { ws.onclose = null; ws = null; }  // the server closes next: keep this message
      text(state, message);
      var pill = document.getElementById("call-state");
      if (pill) { pill.textContent = "Ended"; pill.className = "pill"; }
      controls.hidden = true; startBtn.hidden = true; stopBtn.hidden = true;
      if (audio) { audio.close(); audio = null; }
    }

    startBtn.addEventListener("click", function () {
      try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { audio = null; }
      ws = new WebSocket(wsUrl(panel.dataset.wsPath));
      ws.binaryType = "arraybuffer";
      text(state, "Connecting…");
      ws.onmessage = function (e) {
        if (typeof e.data !== "string") { play(new Uint8Array(e.data)); return; }
        var ev = JSON.parse(e.data);
        if (ev.kind === "hello") {
          text(state, ev.audio ? "Listening: both sides." : ev.remote
            ? "Following the conversation (the call runs on another server: no audio here)."
            : "Following the conversation (ConversationRelay calls carry no audio to us).");
          startBtn.hidden = true; stopBtn.hidden = false; controls.hidden = false;
          var shown = transcript.querySelectorAll("li.turn").length;
          ev.transcript.slice(shown).forEach(function (t) { addTurn(t.role, t.text, t.heard); });
        } else if (ev.kind === "turn") {
          addTurn(ev.role, ev.text, ev.heard);
        } else if (ev.kind === "token") {
          if (!speaking) {
            speaking = document.createElement("li");
            speaking.className = "turn turn-agent speaking";
            speaking.textContent = "Agent: ";
            transcript.appendChild(speaking);
          }
          speaking.textContent += ev.token;
        } else if (ev.kind === "intervention") {
          if (ev.recorded) addIntervention(ev);
          panel.querySelectorAll(".errorlist").forEach(function (el) { el.textContent = ""; });
          if (ev.ok) { text(result, "Done: " + ev.type + "."); }
          else {
            var slot = ev.field && panel.querySelector('.errorlist[data-field="' + ev.field + '"]');
            if (slot) slot.textContent = ev.error; else text(result, ev.error);
          }
        } else if (ev.kind === "recording" && ev.error) {
          text(result, ev.error);
        } else if (ev.kind === "end") {
          ended("The call has ended" + (ev.error ? " (the agent failed: " + ev.error + ")." : "."));
        } else if (ev.kind === "not_live") {
          ended(ev.message);
        }
      };
      ws.onclose = function () { if (ws) { text(state, "Disconnected."); startBtn.hidden = false; stopBtn.hidden = true; controls.hidden = true; ws = null; } };
    });
    stopBtn.addEventListener("click", stop);

    function send(form, build) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        if (!ws || ws.readyState !== 1) return;
        text(result, "");
        ws.send(JSON.stringify(build(form)));
      });
    }
    send(document.getElementById("iv-takeover"), function (f) { return {type: "takeover", action: f.action.value}; });
    send(document.getElementById("iv-transfer"), function (f) { return {type: "transfer", number: f.number.value}; });
    send(document.getElementById("iv-instruction"), function (f) {
      var msg = {type: "instruction", text: f.text.value};
      f.text.value = "";
      return msg;
    });
    send(document.getElementById("iv-end"), function () { return {type: "end"}; });
  }

  document.addEventListener("DOMContentLoaded", function () { live(); listen(); });
})();
