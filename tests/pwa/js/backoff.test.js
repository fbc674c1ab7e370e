// Reconnect delays, checked against the rule written out by hand: 500 ms doubling to a 10 s cap, minus up to 25%.
import { reconnectDelay } from '/app/js/backoff.js';
import { equal, ok } from './assert.js';

export const tests = {
  'doubles from half a second without jitter'() {
    equal([0, 1, 2, 3, 4].map((n) => reconnectDelay(n, () => 0)), [500, 1000, 2000, 4000, 8000]);
  },
  'caps at ten seconds'() {
    equal(reconnectDelay(5, () => 0), 10000);
    equal(reconnectDelay(60, () => 0), 10000);
  },
  'jitter takes off at most a quarter'() {
    equal(reconnectDelay(2, () => 1), 1500);
    for (let i = 0; i < 50; i += 1) {
      const delay = reconnectDelay(3);
      ok(delay >= 3000 && delay <= 4000, `3000 <= ${delay} <= 4000`);
    }
  },
};
