// Calls back once per video frame presented, via requestVideoFrameCallback.

/** Starts counting; returns a function that stops it. */
export function onEachFrame(video: HTMLVideoElement, callback: (now: DOMHighResTimeStamp) => void): () => void {
  let stopped = false;
  const tick = (now: DOMHighResTimeStamp): void => {
    if (stopped) return;
    callback(now);
    handle = video.requestVideoFrameCallback(tick);
  };
  let handle = video.requestVideoFrameCallback(tick);
  return () => {
    stopped = true;
    video.cancelVideoFrameCallback(handle);
  };
}
