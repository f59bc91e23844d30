// WHEP (WebRTC-HTTP egress): one POST of the SDP offer, one DELETE of the session resource.

import { RequestFailure, send } from "./api.ts";

export interface WhepAnswer {
  sdp: string;
  /** The session resource to DELETE at the end; null if the host sent no (readable) Location. */
  resourceUrl: string | null;
}

export async function whepOffer(whepUrl: string, token: string, offerSdp: string): Promise<WhepAnswer> {
  let res: Response;
  try {
    res = await send(whepUrl, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/sdp", Accept: "application/sdp" },
      body: offerSdp,
    });
  } catch (err) {
    if (err instanceof RequestFailure && err.status === 401) {
      throw new RequestFailure(`The host refused the session token: ${err.message}`, err.status, err.code);
    }
    throw err;
  }
  const sdp = await res.text();
  if (!sdp.startsWith("v=0")) throw new RequestFailure("The host answered without an SDP answer", res.status, "bad_answer");
  const location = res.headers.get("Location");
  if (location === null) console.warn("gridplay: WHEP answer has no readable Location header (Access-Control-Expose-Headers?)");
  return { sdp, resourceUrl: location === null ? null : new URL(location, whepUrl).href };
}

/** Ends the WHEP session; `keepalive` lets the request outlive the page (pagehide). */
export async function whepDelete(resourceUrl: string, token: string, keepalive = false): Promise<void> {
  await send(resourceUrl, { method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive });
}
