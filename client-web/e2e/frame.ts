// Functions evaluated inside the page (self-contained: they are serialised by Playwright).

export interface FrameAnalysis {
  width: number;
  height: number;
  /** Standard deviation of the luma of all pixels (0 = uniform picture). */
  lumaStdDev: number;
  /** Pixels that pass the player's yellow test (R>180, G>140, B<90). */
  yellowPixels: number;
  /** Centroid of the yellow pixels as fractions of width/height; null when there are none. */
  cx: number | null;
  cy: number | null;
}

/** Grabs the current frame of #stream into a canvas and measures it. */
export function analyseFrame(): FrameAnalysis {
  const video = document.getElementById("stream");
  if (!(video instanceof HTMLVideoElement)) throw new Error("no #stream video");
  const width = video.videoWidth;
  const height = video.videoHeight;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (ctx === null) throw new Error("no 2d context");
  ctx.drawImage(video, 0, 0, width, height);
  const { data } = ctx.getImageData(0, 0, width, height);
  let sum = 0;
  let sumSq = 0;
  let yellow = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0, p = 0; i < data.length; i += 4, p++) {
    const r = data[i] ?? 0;
    const g = data[i + 1] ?? 0;
    const b = data[i + 2] ?? 0;
    const luma = 0.299 * r + 0.587 * g + 0.114 * b;
    sum += luma;
    sumSq += luma * luma;
    if (r > 180 && g > 140 && b < 90) {
      yellow++;
      sx += p % width;
      sy += Math.floor(p / width);
    }
  }
  const n = width * height;
  const mean = sum / n;
  return {
    width,
    height,
    lumaStdDev: Math.sqrt(Math.max(0, sumSq / n - mean * mean)),
    yellowPixels: yellow,
    cx: yellow > 0 ? (sx / yellow + 0.5) / width : null,
    cy: yellow > 0 ? (sy / yellow + 0.5) / height : null,
  };
}

/** Where the picture lies inside #stream (object-fit: contain), in viewport CSS pixels. */
export function pictureBox(): { left: number; top: number; width: number; height: number } {
  const video = document.getElementById("stream");
  if (!(video instanceof HTMLVideoElement)) throw new Error("no #stream video");
  const box = video.getBoundingClientRect();
  const scale = Math.min(box.width / video.videoWidth, box.height / video.videoHeight);
  const width = video.videoWidth * scale;
  const height = video.videoHeight * scale;
  return { left: box.left + (box.width - width) / 2, top: box.top + (box.height - height) / 2, width, height };
}

/** The mean luma of each cell of a `cells`×`cells` grid over the current frame of #stream, row by row: a coarse
 * signature for telling whether the picture changed, and where. */
export function lumaGrid(cells: number): number[] {
  const video = document.getElementById("stream");
  if (!(video instanceof HTMLVideoElement)) throw new Error("no #stream video");
  const width = video.videoWidth;
  const height = video.videoHeight;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (ctx === null) throw new Error("no 2d context");
  ctx.drawImage(video, 0, 0, width, height);
  const { data } = ctx.getImageData(0, 0, width, height);
  const sums = new Array<number>(cells * cells).fill(0);
  for (let i = 0, p = 0; i < data.length; i += 4, p++) {
    const cell = Math.floor(((p % width) * cells) / width) + cells * Math.floor((Math.floor(p / width) * cells) / height);
    sums[cell] = (sums[cell] ?? 0) + 0.299 * (data[i] ?? 0) + 0.587 * (data[i + 1] ?? 0) + 0.114 * (data[i + 2] ?? 0);
  }
  const perCell = (width * height) / (cells * cells);
  return sums.map((s) => s / perCell);
}
