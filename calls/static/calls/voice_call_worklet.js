// "Call this version": the AudioWorklet half of the browser's Media Stream (see voice_call.js).
//
// One processor does both directions, on the audio thread:
// - capture: the microphone at the context's rate (44.1/48 kHz) -> 4th-order low-pass at 3.4 kHz -> 8 kHz
//   (fractional decimation, linear interpolation) -> G.711 μ-law -> 160-byte (20 ms) frames posted to the page;
// - playback: the agent's μ-law frames (posted by the page) -> PCM -> the context's rate (linear interpolation),
//   with Twilio's marks: a mark is echoed once every frame queued before it has played, or at once on `clear`
//   (which drops what was queued, as Twilio's buffer does).
// The codec and resamplers are plain functions on `CallwellAudio` so they can be tested outside a browser.
"use strict";

var CallwellAudio = (function () {
  var BIAS = 0x84;
  var CLIP = 32635;

  function mulawEncode(sample) {  // float in [-1, 1] -> μ-law byte
    var s = Math.round(Math.max(-1, Math.min(1, sample)) * 32767);
    var sign = 0;
    if (s < 0) { sign = 0x80; s = -s; }
    if (s > CLIP) s = CLIP;
    s += BIAS;
    var exponent = 7;
    for (var mask = 0x4000; (s & mask) === 0 && exponent > 0; exponent--, mask >>= 1) { /* find the segment */ }
    var mantissa = (s >> (exponent + 3)) & 0x0f;
    return ~(sign | (exponent << 4) | mantissa) & 0xff;
  }

  var DECODE = new Float32Array(256);
  for (var b = 0; b < 256; b++) {
    var u = ~b & 0xff;
    var exponent = (u >> 4) & 0x07;
    var magnitude = ((((u & 0x0f) << 3) + BIAS) << exponent) - BIAS;
    DECODE[b] = ((u & 0x80) ? -magnitude : magnitude) / 32768;
  }

  function lowpass(rate, cutoff, q) {  // RBJ biquad low-pass, direct form I state kept in the closure
    var w0 = 2 * Math.PI * Math.min(cutoff, rate * 0.45) / rate;
    var alpha = Math.sin(w0) / (2 * q);
    var cos = Math.cos(w0);
    var a0 = 1 + alpha;
    var b0 = (1 - cos) / 2 / a0, b1 = (1 - cos) / a0, b2 = b0, a1 = -2 * cos / a0, a2 = (1 - alpha) / a0;
    var x1 = 0, x2 = 0, y1 = 0, y2 = 0;
    return function (x) {
      var y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
      x2 = x1; x1 = x; y2 = y1; y1 = y;
      return y;
    };
  }

  // Capture: push input samples at `rate`; calls onFrame(Uint8Array(160) μ-law, level) every 20 ms of audio.
  function Downsampler(rate, onFrame) {
    var ratio = rate / 8000;
    var f1 = lowpass(rate, 3400, 0.5412), f2 = lowpass(rate, 3400, 1.3066);  // Butterworth, 4th order
    var t = 0, prev = 0, frame = new Uint8Array(160), n = 0, energy = 0;
    this.push = function (samples) {
      for (var i = 0; i < samples.length; i++) {
        var x = f2(f1(samples[i]));
        while (t <= 0) {  // the next 8 kHz sample lies between the previous input sample and this one
          var y = x + (x - prev) * t;
          energy += y * y;
          frame[n++] = mulawEncode(y);
          if (n === 160) {
            onFrame(frame, Math.sqrt(energy / 160));
            frame = new Uint8Array(160); n = 0; energy = 0;
          }
          t += ratio;
        }
        prev = x;
        t -= 1;
      }
    };
  }

  // Playback: 8 kHz μ-law in, samples at `rate` out; marks echoed through onMark(name) once played.
  function Player(rate, onMark) {
    var step = 8000 / rate;
    var chunks = [], head = 0, queued = 0, played = 0, marks = [];
    var a = 0, bb = 0, t = 0;
    function next() {
      while (chunks.length && head >= chunks[0].length) { chunks.shift(); head = 0; }
      if (!chunks.length) return null;
      played++;
      return DECODE[chunks[0][head++]];
    }
    function echo() {
      while (marks.length && marks[0].at <= played) onMark(marks.shift().name);
    }
    this.enqueue = function (bytes) { chunks.push(bytes); queued += bytes.length; };
    this.mark = function (name) { marks.push({name: name, at: queued}); echo(); };
    this.clear = function () {
      chunks = []; head = 0; played = queued; a = bb = 0; t = 0;
      echo();  // Twilio echoes the marks of cleared audio at once
    };
    this.pending = function () { return queued - played; };
    this.render = function (out) {
      for (var i = 0; i < out.length; i++) {
        out[i] = a + (bb - a) * t;
        t += step;
        while (t >= 1) {
          t -= 1;
          a = bb;
          var s = next();
          bb = s === null ? 0 : s;
        }
      }
      echo();
    };
  }

  return {mulawEncode: mulawEncode, mulawDecode: function (byte) { return DECODE[byte & 0xff]; },
          Downsampler: Downsampler, Player: Player};
})();

if (typeof registerProcessor === "function") {
  class CallwellPhoneProcessor extends AudioWorkletProcessor {
    constructor() {
      super();
      var port = this.port;
      this.capture = new CallwellAudio.Downsampler(sampleRate, function (frame, level) {
        port.postMessage({type: "frame", frame: frame.buffer, level: level}, [frame.buffer]);
      });
      this.player = new CallwellAudio.Player(sampleRate, function (name) {
        port.postMessage({type: "mark", name: name});
      });
      this.running = true;
      var self = this;
      port.onmessage = function (event) {
        var m = event.data;
        if (m.type === "play") self.player.enqueue(new Uint8Array(m.bytes));
        else if (m.type === "mark") self.player.mark(m.name);
        else if (m.type === "clear") self.player.clear();
        else if (m.type === "stop") self.running = false;
      };
    }

    process(inputs, outputs) {
      var input = inputs[0] && inputs[0][0];
      if (input) this.capture.push(input);
      var output = outputs[0];
      if (output && output[0]) {
        this.player.render(output[0]);
        for (var c = 1; c < output.length; c++) output[c].set(output[0]);
      }
      return this.running;
    }
  }
  registerProcessor("callwell-phone", CallwellPhoneProcessor);
} else if (typeof module === "object" && module.exports) {
  module.exports = CallwellAudio;  // node, for the codec tests
}
