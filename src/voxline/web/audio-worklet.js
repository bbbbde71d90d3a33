// voxline web client: the two audio processors, run on the audio rendering thread.
//
// pcm-capture:  microphone (context rate) -> low-pass + resample -> PCM16 frames at the
//               session rate, posted to the page as ArrayBuffers.
// pcm-playback: PCM16 at the session rate -> context rate, played from a queue in which the
//               server's marks sit between the audio chunks. A mark is posted back to the
//               page when playback reaches it; `clear` drops queued audio and posts every
//               pending mark at once (as Twilio does), so the server knows what was heard.

const PHASES = 64; // fractional positions of the capture filter, precomputed
const ZERO_CROSSINGS = 8; // filter half-width, in output sample periods

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.outRate = opts.targetRate || 16000;
    this.frame = new Int16Array(opts.frameSamples || 320);
    this.filled = 0;
    this.step = sampleRate / this.outRate; // input samples per output sample
    this.half = Math.ceil(ZERO_CROSSINGS * Math.max(1, this.step));
    this.kernels = buildKernels(this.half, (0.45 * this.outRate) / sampleRate);
    this.buffer = new Float32Array(4096);
    this.length = 0; // samples held in buffer
    this.position = this.half; // next output's centre, in input samples from buffer start
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    this.append(channel);
    const width = 2 * this.half;
    while (Math.floor(this.position) + this.half < this.length) {
      const base = Math.floor(this.position);
      const phase = Math.min(PHASES - 1, Math.round((this.position - base) * PHASES));
      const kernel = this.kernels[phase];
      const first = base - this.half + 1;
      let sum = 0;
      for (let k = 0; k < width; k++) sum += kernel[k] * this.buffer[first + k];
      this.emit(sum);
      this.position += this.step;
    }
    // Keep only what the next outputs still need.
    const drop = Math.max(0, Math.floor(this.position) - this.half + 1);
    if (drop > 0) {
      this.buffer.copyWithin(0, drop, this.length);
      this.length -= drop;
      this.position -= drop;
    }
    return true;
  }

  append(samples) {
    if (this.length + samples.length > this.buffer.length) {
      const grown = new Float32Array(2 * (this.length + samples.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(samples, this.length);
    this.length += samples.length;
  }

  emit(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = Math.round(clamped * 32767);
    if (this.filled === this.frame.length) {
      const out = this.frame.slice().buffer;
      this.port.postMessage(out, [out]);
      this.filled = 0;
    }
  }
}

// Windowed-sinc low-pass kernels (Blackman window), one per fractional phase, each summing
// to 1. `cutoff` is in cycles per input sample.
function buildKernels(half, cutoff) {
  const kernels = [];
  for (let p = 0; p < PHASES; p++) {
    const offset = p / PHASES;
    const kernel = new Float32Array(2 * half);
    let total = 0;
    for (let k = 0; k < 2 * half; k++) {
      const x = k - half + 1 - offset; // distance from the output's position
      const sinc = x === 0 ? 1 : Math.sin(2 * Math.PI * cutoff * x) / (2 * Math.PI * cutoff * x);
      const w = (x + half) / (2 * half); // 0..1 across the window
      const blackman = 0.42 - 0.5 * Math.cos(2 * Math.PI * w) + 0.08 * Math.cos(4 * Math.PI * w);
      kernel[k] = sinc * Math.max(0, blackman);
      total += kernel[k];
    }
    for (let k = 0; k < kernel.length; k++) kernel[k] /= total;
    kernels.push(kernel);
  }
  return kernels;
}

class PcmPlayback extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.step = (opts.inputRate || 16000) / sampleRate; // input samples per output sample
    this.queue = []; // {samples: Float32Array} | {mark: string}
    this.index = 0; // position in the head chunk
    this.fraction = 0;
    this.last = 0; // the input sample before `index`, for interpolation
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(message) {
    if (message.type === "audio") {
      const pcm = new Int16Array(message.pcm);
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
      if (samples.length) this.queue.push({ samples });
    } else if (message.type === "mark") {
      this.queue.push({ mark: message.name });
    } else if (message.type === "clear") {
      for (const item of this.queue) {
        if (item.mark !== undefined) this.port.postMessage({ type: "mark", name: item.mark });
      }
      this.queue = [];
      this.index = 0;
      this.fraction = 0;
      this.last = 0;
    }
  }

  // The chunk being played, after posting the marks that playback has now reached.
  head() {
    while (this.queue.length && this.queue[0].mark !== undefined) {
      this.port.postMessage({ type: "mark", name: this.queue.shift().mark });
    }
    return this.queue.length ? this.queue[0] : null;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let chunk = this.head();
    for (let i = 0; i < out.length; i++) {
      if (!chunk) {
        out[i] = 0;
        continue;
      }
      const current = chunk.samples[this.index];
      out[i] = this.last + (current - this.last) * this.fraction;
      this.fraction += this.step;
      while (chunk && this.fraction >= 1) {
        this.fraction -= 1;
        this.last = chunk.samples[this.index++];
        if (this.index >= chunk.samples.length) {
          this.queue.shift();
          this.index = 0;
          chunk = this.head();
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
registerProcessor("pcm-playback", PcmPlayback);
