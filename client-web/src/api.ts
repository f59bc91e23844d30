// The broker's JSON API on the page's own origin.

import type { AllocateRequest } from "./generated/AllocateRequest";
import type { AllocateResponse } from "./generated/AllocateResponse";
import type { ApiError } from "./generated/ApiError";
import type { App } from "./generated/App";
import type { SessionReceipt } from "./generated/SessionReceipt";
import type { SettlementInfo } from "./generated/SettlementInfo";
import type { VoucherSubmission } from "./generated/VoucherSubmission";
import { candidatesUrl } from "./rtt.ts";

/** A failed HTTP exchange, with a message fit to show the player. */
export class RequestFailure extends Error {
  override name = "RequestFailure";
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

export async function listApps(): Promise<App[]> {
  const res = await send("/v1/apps", { headers: { Accept: "application/json" } });
  return (await res.json()) as App[];
}

export async function createSession(request: AllocateRequest): Promise<AllocateResponse> {
  const res = await send("/v1/sessions", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(request),
  });
  return (await res.json()) as AllocateResponse;
}

/** The broker's free hosts for `app` with their prices now (`GET /v1/candidates`), unchecked: see price.ts quoteOf. */
export async function getCandidates(app: App): Promise<unknown> {
  const res = await send(candidatesUrl(app.profile, null, "/", app.id), { headers: { Accept: "application/json" } });
  return (await res.json()) as unknown;
}

/** Ends a session with its token; `keepalive` lets the request outlive the page (pagehide). */
export async function deleteSession(allocation: AllocateResponse, keepalive = false): Promise<void> {
  await send(`/v1/sessions/${encodeURIComponent(allocation.session_id)}`, {
    method: "DELETE",
    headers: { Authorization: `Bearer ${allocation.token}` },
    keepalive,
  });
}

/** Where sessions settle on chain; null when the broker settles nothing (404). */
export async function getSettlement(): Promise<SettlementInfo | null> {
  return orNullOn404(() => send("/v1/settlement", { headers: { Accept: "application/json" } }));
}

/** Hands the broker the player's signed voucher for the session (204). */
export async function submitVoucher(allocation: AllocateResponse, submission: VoucherSubmission): Promise<void> {
  await send(`/v1/sessions/${encodeURIComponent(allocation.session_id)}/voucher`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${allocation.token}` },
    body: JSON.stringify(submission),
  });
}

/** The session's billed blocks so far; null while the broker has none (404: no voucher). */
export async function getReceipt(sessionId: string): Promise<SessionReceipt | null> {
  return orNullOn404(() => send(`/v1/sessions/${encodeURIComponent(sessionId)}/receipt`, { headers: { Accept: "application/json" } }));
}

async function orNullOn404<T>(request: () => Promise<Response>): Promise<T | null> {
  try {
    return (await (await request()).json()) as T;
  } catch (err) {
    if (err instanceof RequestFailure && err.status === 404) return null;
    throw err;
  }
}

/** fetch that turns network errors and non-2xx answers into RequestFailure. */
export async function send(url: string | URL, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new RequestFailure(`Cannot reach ${new URL(url, location.href).host}: ${String(err)}`, 0, "network");
  }
  if (res.ok) return res;
  throw await failureOf(res);
}

/** Reads the `{ error, message }` body of an error answer, falling back to the status line. */
async function failureOf(res: Response): Promise<RequestFailure> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as Partial<ApiError>;
    if (typeof body.message === "string" && body.message !== "") {
      return new RequestFailure(body.message, res.status, typeof body.error === "string" ? body.error : "unknown");
    }
  } catch {
    // not JSON: fall through
  }
  return new RequestFailure(`${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`, res.status, "http");
}
