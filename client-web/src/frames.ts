// Calls back once per video frame presented, via requestVideoFrameCallback, with the frame's metadata
// (its RTP timestamp and presentation time are what click-to-photon needs).

/** Starts watching; returns a function that stops it. */
export function onEachFrame(
  video: HTMLVideoElement,
  callback: (now: DOMHighResTimeStamp, metadata: VideoFrameCallbackMetadata) => void,
): () => void {
  let stopped = false;
  const tick = (now: DOMHighResTimeStamp, metadata: VideoFrameCallbackMetadata): void => {
    if (stopped) return;
    callback(now, metadata);
    handle = video.requestVideoFrameCallback(tick);
  };
  let handle = video.requestVideoFrameCallback(tick);
  return () => {
    stopped = true;
    video.cancelVideoFrameCallback(handle);
  };
}
