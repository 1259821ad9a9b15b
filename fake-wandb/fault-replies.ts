/** The faults as HTTP: the reply that replaces a response, or what a reset, stall or truncation does to it. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FaultKind } from "./faults.js";
import { jsonReply, type Reply } from "./http.js";
import type { ServerState } from "./server-state.js";

/** The reply for a fault that replaces the response; null for faults that act on the socket or the body. */
export function faultReply(st: ServerState, kind: FaultKind): Reply | null {
  switch (kind) {
    case "500":
      return jsonReply(500, { error: "internal database error" });
    case "502":
      return {
        status: 502,
        headers: { "Content-Type": "text/html; charset=UTF-8" },
        body: Buffer.from(
          "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
        ),
      };
    case "503":
      return {
        status: 503,
        headers: { "Content-Type": "text/html; charset=UTF-8", "Retry-After": "1" },
        body: Buffer.from(
          "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>\n",
        ),
      };
    case "429":
      return jsonReply(
        429,
        { error: "rate limit exceeded" },
        {
          "Retry-After": "1",
          "RateLimit-Limit": String(Math.max(1, Math.floor(st.settings.rateLimit)) || 1000),
          "RateLimit-Remaining": "0",
          "RateLimit-Reset": "1",
        },
      );
    case "graphql":
      return jsonReply(200, {
        errors: [{ message: "An internal error occurred. Please contact support." }],
        data: null,
      });
    default:
      return null;
  }
}

/**
 * Applies a drawn fault. Returns true when the request is finished (a fault reply, a reset or a stall); false
 * for "truncated", which the caller applies to the real reply.
 */
export async function applyFault(
  st: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  kind: FaultKind,
): Promise<boolean> {
  st.countFault(kind);
  if (kind === "truncated") return false;
  if (kind === "reset") {
    st.countStatus("reset");
    req.socket.destroy();
    return true;
  }
  if (kind === "stall") {
    st.countStatus("stall");
    const socket: Socket = req.socket;
    let t: NodeJS.Timeout | undefined;
    const stop = () => {
      if (t) {
        clearTimeout(t);
        st.timers.delete(t);
      }
    };
    t = setTimeout(() => {
      st.timers.delete(t as NodeJS.Timeout);
      socket.destroy();
    }, st.settings.stallMs);
    st.timers.add(t);
    socket.once("close", stop);
    return true;
  }
  const reply = faultReply(st, kind);
  if (reply) await st.send(req, res, reply, { costed: true });
  return true;
}
