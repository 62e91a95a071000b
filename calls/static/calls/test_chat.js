// Test in Studio: a websocket to /v1/studio/test-chat/<version>/<environment> (calls.consumers.stream.CallConsumer, wire "text").
(function () {
  "use strict";
  function setup(panel) {
    if (panel.dataset.ready) return;
    panel.dataset.ready = "1";
    var log = panel.querySelector(".transcript-log");
    var form = panel.querySelector(".test-chat-input");
    var input = form.querySelector("input[name=text]");
    var send = form.querySelector("button[type=submit]");
    var digit = form.querySelector("select[name=digit]");
    var startBtn = panel.querySelector("[data-action=start]");
    var stopBtn = panel.querySelector("[data-action=stop]");
    var ws = null;
    var bubble = null;
    var versionSelect = panel.querySelector("select[name=version]");
    var environmentSelect = panel.querySelector("select[name=environment]");
    var missingNote = panel.querySelector("[data-testid=test-chat-missing]");

    // What the version needs (secret/variable names) that the environment lacks: a real call there is refused.
    function names(option, key) {
      return option ? (option.dataset[key] || "").split(" ").filter(Boolean) : [];
    }
    function checkMissing() {
      if (!missingNote) return;
      var v = versionSelect.selectedOptions[0], e = environmentSelect.selectedOptions[0];
      if (!v || !e || !e.value) { missingNote.hidden = true; return; }
      var haveS = names(e, "secrets"), haveV = names(e, "variables");
      var lackS = names(v, "secrets").filter(function (n) { return haveS.indexOf(n) === -1; });
      var lackV = names(v, "variables").filter(function (n) { return haveV.indexOf(n) === -1; });
      var parts = [];
      if (lackS.length) parts.push((lackS.length > 1 ? "secrets " : "secret ") + lackS.join(", "));
      if (lackV.length) parts.push((lackV.length > 1 ? "variables " : "variable ") + lackV.join(", "));
      missingNote.textContent = parts.length ? "The " + e.textContent.trim() + " environment lacks the " +
        parts.join(" and the ") + " this version needs: a real call there would be refused." : "";
      missingNote.hidden = !parts.length;
    }
    versionSelect.addEventListener("change", checkMissing);
    environmentSelect.addEventListener("change", checkMissing);
    checkMissing();

    function add(cls, text) {
      var li = document.createElement("li");
      li.className = cls;
      li.textContent = text;
      log.appendChild(li);
      log.scrollTop = log.scrollHeight;
      return li;
    }
    function enable(on) {
      input.disabled = send.disabled = digit.disabled = !on;
      startBtn.hidden = on;
      stopBtn.hidden = !on;
      if (on) input.focus();
    }
    function onMessage(event) {
      var m = JSON.parse(event.data);
      if (m.type === "ready") {
        add("event", "Connected to " + (m.agent || "the agent") + " (" + m.provider + ").");
        enable(true);
      } else if (m.type === "token") {
        if (!bubble) bubble = add("agent", "");
        bubble.textContent += m.token;
        if (m.last) bubble = null;
        log.scrollTop = log.scrollHeight;
      } else if (m.type === "turn" && m.role === "agent" && !m.heard) {
        var last = log.querySelector("li.agent:last-of-type");
        if (last) last.classList.add("interrupted");
      } else if (m.type === "turn" && m.role === "event" && /^Knowledge/.test(m.text || "")) {
        add("event knowledge", m.text);  // the passages a knowledge lookup used (source · position)
      } else if (m.type === "handover") {
        add("event handover", "Handover: " + m.action + " → " + m.destination + " (shown, not dialled)");
      } else if (m.type === "action") {
        var params = Object.keys(m.parameters || {}).map(function (k) { return k + "=" + m.parameters[k]; }).join(", ");
        add("event action" + (m.ok ? "" : " error"), "Action " + m.name + (params ? " (" + params + ")" : "") + ": " +
            (m.status_code || (m.ok ? "ok" : "failed")) + ", " + m.duration_ms + " ms — " + m.result);
      } else if (m.type === "play") {
        add("event", "Plays audio: " + m.source);
      } else if (m.type === "hangup") {
        add("event", "The agent ended the call.");
      } else if (m.type === "error") {
        add("event error", m.message + (m.fallback ? " On a call: apology, then " + m.fallback + "." : ""));
      }
    }
    startBtn.addEventListener("click", function () {
      var version = panel.querySelector("select[name=version]").value;
      var environment = panel.querySelector("select[name=environment]").value;
      if (!version || !environment) return;
      log.innerHTML = "";
      bubble = null;
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      ws = new WebSocket(scheme + location.host + panel.dataset.wsPath + version + "/" + environment);
      ws.addEventListener("message", onMessage);
      ws.addEventListener("close", function () {
        add("event", "Conversation ended.");
        enable(false);
        ws = null;
      });
    });
    stopBtn.addEventListener("click", function () { if (ws) ws.close(); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = input.value.trim();
      if (!ws || !text) return;
      if (bubble) {  // the caller talks over the agent: the reply stops where it was
        ws.send(JSON.stringify({type: "interrupt", heard: bubble.textContent}));
        bubble.classList.add("interrupted");
        bubble = null;
      }
      add("caller", text);
      ws.send(JSON.stringify({type: "message", text: text}));
      input.value = "";
    });
    digit.addEventListener("change", function () {
      if (ws && digit.value) {
        add("caller", "[key " + digit.value + "]");
        ws.send(JSON.stringify({type: "dtmf", digit: digit.value}));
      }
      digit.value = "";
    });
  }
  function init() { document.querySelectorAll("[data-testid=test-chat]").forEach(setup); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  document.addEventListener("htmx:afterSettle", init);
})();
