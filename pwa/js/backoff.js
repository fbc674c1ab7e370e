// Reconnect delays: exponential from 0.5 s, capped at 10 s, with up to 25% jitter so that many phones waking at
// once do not reconnect in lockstep. Pure, so the in-browser unit tests can check it.
export const FIRST_DELAY_MS = 500;
export const MAX_DELAY_MS = 10_000;

export function reconnectDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, attempt));
  return Math.round(base * (1 - 0.25 * random()));
}
