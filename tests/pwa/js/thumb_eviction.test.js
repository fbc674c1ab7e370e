// The thumbnail cache's bound, against evictions worked out by hand: oldest first, until both the entry count
// and the byte total are within their limits.
import '/app/js/thumb_eviction.js';
import { equal } from './assert.js';

const evict = (...args) => globalThis.cauldronThumbsToEvict(...args);
const entries = (...sizes) => sizes.map((bytes, index) => ({ request: `t${index}`, bytes }));

export const tests = {
  'nothing goes while both limits hold'() {
    equal(evict(entries(10, 10, 10), 3, 30), []);
    equal(evict([], 0, 0), []);
  },
  'the oldest go first when there are too many'() {
    equal(evict(entries(1, 1, 1, 1, 1), 3, 1000), ['t0', 't1']);
  },
  'the oldest go first when they weigh too much'() {
    // 50 + 30 + 20 + 10 = 110 bytes; dropping t0 leaves 60 > 40, dropping t1 too leaves 30 <= 40.
    equal(evict(entries(50, 30, 20, 10), 300, 40), ['t0', 't1']);
  },
  'both limits at once: the stricter one decides'() {
    // 4 entries, at most 3: t0 must go (leaving 5 + 5 + 100 = 110 bytes); at most 100 bytes: t1 and t2 too.
    equal(evict(entries(5, 5, 5, 100), 3, 100), ['t0', 't1', 't2']);
  },
};
