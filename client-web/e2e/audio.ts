// Listening to the sound of #stream through WebAudio: `listen` runs inside the page (self-contained: Playwright
// serialises it) and records the power in a frequency band (and any others asked for) a few dozen times a second;
// `bandRise` compares the band before and after a key press, `sumBands` adds the power up over a stretch of samples.

/** A frequency band, in Hz (both ends included). */
export interface Band {
  lowHz: number;
  highHz: number;
}

/** One look at the spectrum: when (performance.now()), the power in the band, in each of the other bands (in the
 * order of ListenOptions.others) and over all frequencies (linear), and the centre of the loudest bin (null in
 * silence). */
export interface BandSample {
  at: number;
  band: number;
  others: number[];
  total: number;
  peakHz: number | null;
}

/** What the page records: the samples so far, and when the watched key was first pressed (null until it was). */
export interface BandTrace {
  samples: BandSample[];
  keyAt: number | null;
}

/** The band, with the other bands to record beside it (e.g. one to compare it with). */
export interface ListenOptions extends Band {
  others?: Band[];
  fftSize: number;
  everyMs: number;
  /** The KeyboardEvent.code whose first press is recorded as `keyAt` (none when absent). */
  key?: string;
}

declare global {
  interface Window {
    __gridplaySound: BandTrace;
  }
}

/** In the page: feeds the audio track of #stream's stream into an AnalyserNode and records a BandSample every
 * `everyMs` in `window.__gridplaySound`; resolves to the AudioContext's state. (Chromium hands remote WebRTC audio to
 * WebAudio only while a media element plays the track too: #stream does.) */
export async function listen(o: ListenOptions): Promise<AudioContextState> {
  const video = document.getElementById("stream");
  if (!(video instanceof HTMLVideoElement) || !(video.srcObject instanceof MediaStream)) throw new Error("no stream on #stream");
  const track = video.srcObject.getAudioTracks()[0];
  if (track === undefined) throw new Error("the stream of #stream has no audio track");
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = o.fftSize;
  analyser.smoothingTimeConstant = 0; // each look is its own window: a short chirp must not be averaged away
  ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser); // an analyser is pulled without a destination
  const trace: BandTrace = { samples: [], keyAt: null };
  window.__gridplaySound = trace;
  window.addEventListener("keydown", (e) => {
    if (e.code === o.key && trace.keyAt === null) trace.keyAt = e.timeStamp;
  });
  const db = new Float32Array(analyser.frequencyBinCount);
  const hzPerBin = ctx.sampleRate / analyser.fftSize;
  const others = o.others ?? [];
  const within = (hz: number, b: Band): boolean => hz >= b.lowHz && hz <= b.highHz;
  window.setInterval(() => {
    analyser.getFloatFrequencyData(db);
    let band = 0;
    const inOthers = others.map(() => 0);
    let total = 0;
    let peak = 0;
    let peakHz: number | null = null;
    db.forEach((level, bin) => {
      const power = 10 ** (level / 10); // -Infinity (silence) is 0
      const hz = bin * hzPerBin;
      total += power;
      if (within(hz, o)) band += power;
      others.forEach((b, i) => {
        if (within(hz, b)) inOthers[i] = (inOthers[i] ?? 0) + power;
      });
      if (power > peak) [peak, peakHz] = [power, hz];
    });
    trace.samples.push({ at: performance.now(), band, others: inOthers, total, peakHz });
  }, o.everyMs);
  return ctx.state;
}

/** The band before and after the key press of `trace`. */
export interface BandRise {
  /** Peak band and overall power in the `quietMs` before the press. */
  quietBand: number;
  quietTotal: number;
  /** Peak band power in the `withinMs` after the press, and the sample that had it. */
  loudBand: number;
  loudest: BandSample | null;
  /** From the press to the first sample whose band power is `rise` times quietBand or more; null if none was. */
  riseAfterMs: number | null;
}

/** Compares the band in the `quietMs` before `trace.keyAt` with the `withinMs` after it. */
export function bandRise(trace: BandTrace, quietMs: number, withinMs: number, rise: number): BandRise {
  const keyAt = trace.keyAt;
  if (keyAt === null) throw new Error("the key was never pressed");
  const quiet = trace.samples.filter((s) => s.at >= keyAt - quietMs && s.at < keyAt);
  const after = trace.samples.filter((s) => s.at > keyAt && s.at <= keyAt + withinMs);
  const quietBand = Math.max(0, ...quiet.map((s) => s.band));
  const loudest = after.reduce<BandSample | null>((best, s) => (best === null || s.band > best.band ? s : best), null);
  const first = after.find((s) => s.band > 0 && s.band >= rise * quietBand);
  return {
    quietBand,
    quietTotal: Math.max(0, ...quiet.map((s) => s.total)),
    loudBand: loudest?.band ?? 0,
    loudest,
    riseAfterMs: first === undefined ? null : first.at - keyAt,
  };
}

/** Power summed over a stretch of samples: in the band, in each other band and overall; `samples` says how many. */
export interface BandSums {
  band: number;
  others: number[];
  total: number;
  samples: number;
}

export function sumBands(samples: readonly BandSample[]): BandSums {
  const sums: BandSums = { band: 0, others: [], total: 0, samples: samples.length };
  for (const s of samples) {
    sums.band += s.band;
    sums.total += s.total;
    s.others.forEach((power, i) => (sums.others[i] = (sums.others[i] ?? 0) + power));
  }
  return sums;
}
