/* Settings → Dialer → Voicemail drop: record the message in the browser (dialer/templates/dialer/dispositions.html).
 * The microphone's samples are kept as PCM and saved as a 16-bit mono WAV (Twilio's <Play> takes WAV and MP3, not
 * the browser's WebM), then posted like an uploaded file. At most 60 seconds. Kept at the context's rate: 16-bit
 * mono at 48 kHz is about 5.8 MB a minute, so the server's 2 MB limit allows about 20 seconds; the samples are
 * decimated to 16 kHz first (3x smaller: a minute fits). */
(function () {
  "use strict";

  var MAX_SECONDS = 60;
  var TARGET_RATE = 16000;

  function downsample(chunks, rate) {  // averaging decimation to about TARGET_RATE
    var factor = Math.max(1, Math.round(rate / TARGET_RATE));
    if (factor === 1) return { chunks: chunks, rate: rate };
    var all = [];
    chunks.forEach(function (c) { for (var i = 0; i < c.length; i++) all.push(c[i]); });
    var out = new Float32Array(Math.floor(all.length / factor));
    for (var j = 0; j < out.length; j++) {
      var sum = 0;
      for (var k = 0; k < factor; k++) sum += all[j * factor + k];
      out[j] = sum / factor;
    }
    return { chunks: [out], rate: Math.round(rate / factor) };
  }

  function wav(chunks, rate) {
    var length = chunks.reduce(function (n, c) { return n + c.length; }, 0);
    var buffer = new ArrayBuffer(44 + length * 2), view = new DataView(buffer);
    function text(offset, s) { for (var i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); }
    text(0, "RIFF"); view.setUint32(4, 36 + length * 2, true); text(8, "WAVE"); text(12, "fmt ");
    view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
    view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, length * 2, true);
    var offset = 44;
    chunks.forEach(function (chunk) {
      for (var i = 0; i < chunk.length; i++, offset += 2) {
        var s = Math.max(-1, Math.min(1, chunk[i]));
        view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
      }
    });
    return new Blob([buffer], { type: "audio/wav" });
  }

  function init() {
    var box = document.querySelector("[data-voicemail-recorder]");
    if (!box) return;
    var startBtn = box.querySelector("[data-role=record-start]"), stopBtn = box.querySelector("[data-role=record-stop]");
    var saveBtn = box.querySelector("[data-role=record-save]");
    var statusEl = box.querySelector("[data-role=record-status]");
    var form = box.querySelector("form");
    var stream = null, context = null, node = null, chunks = [], rate = 8000, blob = null, timer = null;
    if (!navigator.mediaDevices || !window.AudioContext) {
      statusEl.textContent = "This browser cannot record here: upload a file instead.";
      startBtn.disabled = true;
      return;
    }

    function stop() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      if (node) node.disconnect();
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      if (context) context.close();
      node = stream = context = null;
      startBtn.disabled = false; stopBtn.disabled = true;
      if (chunks.length) {
        var small = downsample(chunks, rate);
        blob = wav(small.chunks, small.rate);
        saveBtn.disabled = false;
        statusEl.textContent = "Recorded " + Math.round((blob.size - 44) / 2 / small.rate) + " s. Save it (then listen above), or record again.";
      }
    }

    startBtn.addEventListener("click", function () {
      chunks = []; blob = null; saveBtn.disabled = true;
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (s) {
        stream = s;
        context = new AudioContext();
        rate = context.sampleRate;
        var source = context.createMediaStreamSource(stream);
        node = context.createScriptProcessor(4096, 1, 1);
        node.onaudioprocess = function (e) { chunks.push(new Float32Array(e.inputBuffer.getChannelData(0))); };
        source.connect(node);
        node.connect(context.destination);
        startBtn.disabled = true; stopBtn.disabled = false;
        statusEl.textContent = "Recording… (at most " + MAX_SECONDS + " seconds)";
        timer = setTimeout(stop, MAX_SECONDS * 1000);
      }).catch(function (err) { statusEl.textContent = "The microphone is not available: " + err.message; });
    });
    stopBtn.addEventListener("click", stop);
    saveBtn.addEventListener("click", function () {
      if (!blob) return;
      var data = new FormData(form);
      data.set("audio", blob, "recorded.wav");
      saveBtn.disabled = true;
      fetch(form.action || window.location.href, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) {
          if (response.ok || response.redirected) { window.location.reload(); return; }
          statusEl.textContent = "The message was not saved (" + response.status + ").";
          saveBtn.disabled = false;
        });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
