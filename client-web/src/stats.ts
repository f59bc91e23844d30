// The counters of the current session: exposed as `window.__gridplay` for tests and shown in the overlay.

export interface GridplayStats {
  sessionId: string | null;
  /** requestVideoFrameCallback callbacks since the session started. */
  framesDecoded: number;
  inputsSent: number;
  inputsAcked: number;
  /** True while the "input" data channel is open. */
  inputOpen: boolean;
  /** Time spent measuring RTT to candidate hosts before allocating (overlaps ICE gathering, after the click). */
  rttProbeMs: number | null;
  /** From the Play click to the first presented frame. */
  clickToFirstFrameMs: number | null;
  /** From sending an input to its InputApplied ack, for the latest ack. */
  lastInputLatencyMs: number | null;
  /** The frame id named by the latest ack. */
  lastAckedFrameId: number | null;
}

declare global {
  interface Window {
    __gridplay: GridplayStats;
  }
}

function fresh(): GridplayStats {
  return {
    sessionId: null,
    framesDecoded: 0,
    inputsSent: 0,
    inputsAcked: 0,
    inputOpen: false,
    rttProbeMs: null,
    clickToFirstFrameMs: null,
    lastInputLatencyMs: null,
    lastAckedFrameId: null,
  };
}

/** The live stats object (also `window.__gridplay`). */
export const stats: GridplayStats = fresh();
window.__gridplay = stats;

/** Zeroes every counter for a new session. */
export function resetStats(): void {
  Object.assign(stats, fresh());
}

/** Renders fps, input latency and session id into `element` once a second; returns a stop function. */
export function startOverlay(element: HTMLElement): () => void {
  let lastFrames = stats.framesDecoded;
  const tick = (): void => {
    const fps = stats.framesDecoded - lastFrames;
    lastFrames = stats.framesDecoded;
    const latency = stats.lastInputLatencyMs === null ? "–" : `${Math.round(stats.lastInputLatencyMs)} ms`;
    element.textContent = `${fps} fps · input ${latency} · ${stats.inputsAcked}/${stats.inputsSent} acked`;
  };
  tick();
  const timer = window.setInterval(tick, 1000);
  return () => window.clearInterval(timer);
}
