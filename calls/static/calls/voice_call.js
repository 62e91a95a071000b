// "Call this version": the browser plays Twilio's side of a bidirectional Media Stream to
// ws(s)://HOST/v1/studio/voice-call/<version>/<environment> (calls.consumers.stream.CallConsumer, wire "browser").
//
// Out: `connected`, `start`, 20 ms μ-law 8 kHz `media` frames from the microphone (captured, resampled and encoded by
// the AudioWorklet in voice_call_worklet.js), `dtmf` from the keypad, `mark` echoes, `stop` on hang-up.
// In: `media` (the agent's audio, played by the same worklet), `mark` (echoed once what was queued before it has
// played), `clear` (barge-in: the queued audio is dropped and its marks echoed), and `{"event": "studio"}` messages:
// transcript turns, per-turn latency, handovers and hang-ups (shown, never dialled), errors.
// The panel's data attributes count what happened (frames in/out, marks echoed, clears) for tests and curious users.
(function () {
  "use strict";

  function b64encode(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }
  function b64decode(text) {
    var s = atob(text);
    var bytes = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return bytes;
  }
  function randomSid() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "MZ" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function setup(panel) {
    if (panel.dataset.ready) return;
    panel.dataset.ready = "1";
    var log = panel.querySelector(".transcript-log");
    var status = panel.querySelector(".voice-call-status");
    var meter = panel.querySelector(".voice-call-level");
    var callBtn = panel.querySelector("[data-action=call]");
    var hangupBtn = panel.querySelector("[data-action=hangup]");
    var digit = panel.querySelector("select[name=digit]");
    var call = null;

    function add(cls, text) {
      var li = document.createElement("li");
      li.className = cls;
      li.textContent = text;
      log.appendChild(li);
      log.scrollTop = log.scrollHeight;
      return li;
    }
    function count(name) { panel.dataset[name] = String(Number(panel.dataset[name] || 0) + 1); }
    function state(name, text) {
      panel.dataset.state = name;
      if (text) status.textContent = text;
      var on = name === "connecting" || name === "live";
      callBtn.hidden = on;
      hangupBtn.hidden = !on;
      digit.disabled = name !== "live";
    }

    function Call(version, environment) {
      var self = this;
      this.sid = randomSid();
      this.seq = 0;
      this.chunk = 0;
      this.ended = false;
      // Created inside the click handler: the user gesture lets the context start (resume) at once.
      this.audio = new AudioContext({latencyHint: "interactive"});
      this.audio.resume();
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      this.url = scheme + location.host + panel.dataset.wsPath + version + "/" + environment;
      this.start = function () {
        if (!window.isSecureContext || !navigator.mediaDevices || !self.audio.audioWorklet) {
          self.fail("The microphone needs a secure page (https, or localhost).");
          return;
        }
        state("connecting", "Asking for the microphone…");
        navigator.mediaDevices.getUserMedia({audio: {echoCancellation: true, noiseSuppression: true,
                                                     autoGainControl: true, channelCount: 1}})
          .then(function (stream) {
            self.stream = stream;
            if (self.ended) throw new Error("hung up");
            return self.audio.audioWorklet.addModule(panel.dataset.workletUrl);
          })
          .then(function () {
            if (self.ended) return;
            self.node = new AudioWorkletNode(self.audio, "callwell-phone",
                                             {numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1]});
            self.node.port.onmessage = self.fromWorklet;
            self.source = self.audio.createMediaStreamSource(self.stream);
            self.source.connect(self.node);
            self.node.connect(self.audio.destination);
            self.open();
          })
          .catch(function (err) {
            if (!self.ended) self.fail("Microphone not available: " + (err && err.message ? err.message : err));
          });
      };
      this.open = function () {
        state("connecting", "Calling…");
        var ws = self.ws = new WebSocket(self.url);
        ws.addEventListener("open", function () {
          self.send({event: "connected", protocol: "Call", version: "1.0.0"});
          self.send({event: "start", sequenceNumber: String(++self.seq), streamSid: self.sid,
                     start: {streamSid: self.sid, accountSid: "", callSid: "", tracks: ["inbound"],
                             customParameters: {}, mediaFormat: {encoding: "audio/x-mulaw", sampleRate: 8000,
                                                                 channels: 1}}});
        });
        ws.addEventListener("message", function (event) {
          var m;
          try { m = JSON.parse(event.data); } catch (e) { return; }
          self.fromServer(m);
        });
        ws.addEventListener("close", function () {
          self.cleanup(self.answered || self.errored ? "The call ended."
                       : "The call was refused: only admins of this workspace can call its agents, from this site.");
        });
      };
      this.send = function (message) {
        if (self.ws && self.ws.readyState === WebSocket.OPEN) self.ws.send(JSON.stringify(message));
      };
      this.fromWorklet = function (event) {
        var m = event.data;
        if (m.type === "frame") {
          meter.value = Math.min(1, m.level * 4);
          if (!self.ws || self.ws.readyState !== WebSocket.OPEN || panel.dataset.state !== "live") return;
          self.chunk++;
          self.send({event: "media", sequenceNumber: String(++self.seq), streamSid: self.sid,
                     media: {track: "inbound", chunk: String(self.chunk), timestamp: String(self.chunk * 20),
                             payload: b64encode(new Uint8Array(m.frame))}});
          count("framesOut");
        } else if (m.type === "mark") {
          self.send({event: "mark", sequenceNumber: String(++self.seq), streamSid: self.sid, mark: {name: m.name}});
          // the clears before the first audio played out (the greeting's): a barge-in that cut the greeting
          if (panel.dataset.marks === "0") panel.dataset.clearsAtFirstMark = panel.dataset.clears;
          count("marks");
        }
      };
      this.fromServer = function (m) {
        if (m.event === "media" && m.media && typeof m.media.payload === "string") {
          var bytes = b64decode(m.media.payload);
          if (self.node) self.node.port.postMessage({type: "play", bytes: bytes.buffer}, [bytes.buffer]);
          count("framesIn");
        } else if (m.event === "mark" && m.mark) {
          if (self.node) self.node.port.postMessage({type: "mark", name: String(m.mark.name)});
        } else if (m.event === "clear") {
          if (self.node) self.node.port.postMessage({type: "clear"});
          count("clears");
        } else if (m.event === "studio") {
          self.studio(m);
        }
      };
      this.studio = function (m) {
        if (m.kind === "ready") {
          self.answered = true;
          state("live", "On the call with " + (m.agent || "the agent") + " (" + m.provider + "): speak.");
          var actions = (m.actions || []).map(function (a) { return a.name + " → " + a.destination; });
          add("event", "Connected to " + (m.agent || "the agent") + " (" + m.provider + ")." +
              (actions.length ? " Handover actions: " + actions.join(", ") + "." : ""));
        } else if (m.kind === "turn") {
          var role = m.role === "caller" ? "caller" : (m.role === "agent" ? "agent" : "event");
          var li = add(role, m.text);
          li.dataset.role = role;
          if (role === "agent" && !m.heard) li.classList.add("interrupted");
        } else if (m.kind === "latency") {
          var li2 = add("event latency", (m.after === "start" ? "Greeting" : "Answer") + " started after " +
                        m.ms + " ms");
          li2.dataset.ms = String(m.ms);
        } else if (m.kind === "handover") {
          // The engine's own transcript line for it came just before: mark that one instead of repeating it.
          var text = "Handover: " + m.action + " → " + m.destination;
          var last = log.lastElementChild;
          var shown = last && last.classList.contains("event") && last.textContent === text ? last : add("event", text);
          shown.classList.add("handover");
          shown.textContent = text + " (shown, not dialled)";
          panel.dataset.handover = m.action;
        } else if (m.kind === "hangup") {
          add("event", "The agent ended the call.");
        } else if (m.kind === "error") {
          self.errored = true;
          add("event error", m.message + (m.fallback ? " On a call: apology, then " + m.fallback + "." : ""));
        }
      };
      this.hangup = function () {
        self.send({event: "stop", sequenceNumber: String(++self.seq), streamSid: self.sid,
                   stop: {accountSid: "", callSid: ""}});
        if (self.ws) self.ws.close(); else self.cleanup("The call ended.");
      };
      this.fail = function (text) {
        add("event error", text);
        self.cleanup(text);
      };
      this.cleanup = function (text) {
        if (self.ended) return;
        self.ended = true;
        if (self.ws && self.ws.readyState <= WebSocket.OPEN) self.ws.close();
        if (self.node) { self.node.port.postMessage({type: "stop"}); self.node.disconnect(); }
        if (self.source) self.source.disconnect();
        if (self.stream) self.stream.getTracks().forEach(function (t) { t.stop(); });
        self.audio.close();
        meter.value = 0;
        state("ended", text);
        if (call === self) call = null;
      };
    }

    callBtn.addEventListener("click", function () {
      var version = panel.querySelector("select[name=version]").value;
      var environment = panel.querySelector("select[name=environment]").value;
      if (!version || !environment || call) return;
      log.innerHTML = "";
      ["framesIn", "framesOut", "marks", "clears"].forEach(function (k) { panel.dataset[k] = "0"; });
      delete panel.dataset.handover;
      call = new Call(version, environment);
      call.start();
    });
    hangupBtn.addEventListener("click", function () { if (call) call.hangup(); });
    digit.addEventListener("change", function () {
      if (call && digit.value) {
        call.send({event: "dtmf", sequenceNumber: String(++call.seq), streamSid: call.sid,
                   dtmf: {track: "inbound_track", digit: digit.value}});
      }
      digit.value = "";
    });
  }
  function init() { document.querySelectorAll("[data-testid=voice-call]").forEach(setup); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  document.addEventListener("htmx:afterSettle", init);
})();
