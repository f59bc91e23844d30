// Units the pages share.

/** Hours: two decimals from 0.01 h up ("1.25 h"), two significant digits below ("0.0036 h"), "0 h" for none. */
export function hoursText(hours: number): string {
  if (hours === 0) return "0 h";
  return `${hours >= 0.01 ? hours.toFixed(2) : hours.toPrecision(2)} h`;
}
