/* Troubleshoot Calls: in-browser checks (WebRTC support, microphone permission). */
(function () {
  "use strict";
  function item(name) { return document.querySelector('[data-testid="browser-checks"] [data-check="' + name + '"]'); }
  function show(name, passed, detail) {
    var li = item(name);
    if (!li) return;
    var pill = li.querySelector('[data-role="result"]');
    pill.textContent = passed === null ? "Unknown" : (passed ? "Passed" : "Failed");
    pill.className = "pill " + (passed === null ? "warn" : (passed ? "ok" : "err"));
    li.dataset.state = passed === null ? "unknown" : (passed ? "passed" : "failed");
    var fix = li.querySelector('[data-role="fix"]');
    if (fix) fix.hidden = !!passed;
    var d = li.querySelector('[data-role="detail"]');
    if (d && detail) d.textContent = detail;
  }
  function webrtc() {
    var ok = typeof window.RTCPeerConnection === "function" && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
    show("webrtc", ok);
  }
  function microphone() {
    if (!navigator.permissions || !navigator.permissions.query) { show("microphone", null, "This browser does not report permissions; use the button to test."); return; }
    navigator.permissions.query({ name: "microphone" }).then(function (status) {
      var render = function () {
        if (status.state === "granted") show("microphone", true, "Allowed.");
        else if (status.state === "denied") show("microphone", false, "Blocked for this site.");
        else show("microphone", null, "Not asked yet: the browser will ask on the first call.");
      };
      render();
      status.onchange = render;
    }, function () { show("microphone", null, "This browser does not report microphone permission."); });
  }
  function ask() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { show("microphone", false, "No microphone API."); return; }
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      stream.getTracks().forEach(function (t) { t.stop(); });
      show("microphone", true, "Allowed.");
    }, function (err) { show("microphone", false, (err && err.name === "NotFoundError") ? "No microphone found." : "Blocked for this site."); });
  }
  function init() {
    webrtc();
    microphone();
    var li = item("microphone");
    if (li) li.querySelector('[data-role="ask"]').addEventListener("click", ask);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
