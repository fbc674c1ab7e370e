// The queue's order and the priority changes for a move, worked out by hand from the daemon's rule: higher
// priority runs first, equal priorities take turns (cauldrond/queue/job_queue.py), shown oldest first.
import { moveChanges, queueOrder, sharesTurnWithPrevious } from '/app/js/queue_order.js';
import { equal, ok } from './assert.js';

const e = (id, priority, status = 'queued') => ({ id, priority, status });

export const tests = {
  'orders by priority, then age, leaving finished experiments out'() {
    const ordered = queueOrder([e(1, 0, 'done'), e(2, 0), e(3, 5), e(4, 0, 'running'), e(5, 5, 'cancelled'), e(6, -1)]);
    equal(ordered.map((x) => x.id), [3, 2, 4, 6]);
  },
  'says which experiments take turns'() {
    const ordered = [e(3, 5), e(2, 0), e(4, 0)];
    equal([0, 1, 2].map((i) => sharesTurnWithPrevious(ordered, i)), [false, false, true]);
  },
  'to the top among equals raises only the moved one, one above the first'() {
    // A, B, C all at 0 take turns; C to the top: C must beat A's 0, so C gets 1; A and B keep taking turns.
    equal(moveChanges([e(1, 0), e(2, 0), e(3, 0)], 3, 'top'), [{ experiment_id: 3, priority: 1 }]);
  },
  'to the top above a higher priority'() {
    equal(moveChanges([e(1, 7), e(2, 3), e(3, 0)], 3, 'top'), [{ experiment_id: 3, priority: 8 }]);
  },
  'up by one with room between the neighbours'() {
    // Z 10, A 5, E 0: E above A needs 6, still below Z's 10.
    equal(moveChanges([e(1, 10), e(2, 5), e(3, 0)], 3, 'up'), [{ experiment_id: 3, priority: 6 }]);
  },
  'up by one with no room raises the one above too'() {
    // Z 2, A 1, E 0, B 0 -> Z, E, A, B: E must beat A (1) so 2; Z must then beat E, so 3; B is untouched.
    equal(moveChanges([e(1, 2), e(2, 1), e(3, 0), e(4, 0)], 3, 'up'),
      [{ experiment_id: 1, priority: 3 }, { experiment_id: 3, priority: 2 }]);
  },
  'down by one'() {
    // E 0, A 0, B 0 -> A, E, B: E must beat B (0), so 1; A must then beat E, so 2.
    equal(moveChanges([e(1, 0), e(2, 0), e(3, 0)], 1, 'down'),
      [{ experiment_id: 2, priority: 2 }, { experiment_id: 1, priority: 1 }]);
  },
  'no move past either end'() {
    equal(moveChanges([e(1, 0), e(2, 0)], 1, 'up'), []);
    equal(moveChanges([e(1, 0), e(2, 0)], 1, 'top'), []);
    equal(moveChanges([e(1, 0), e(2, 0)], 2, 'down'), []);
  },
  'refuses to pass the daemon limit of 1000'() {
    let message = '';
    try { moveChanges([e(1, 1000), e(2, 0)], 2, 'top'); } catch (error) { message = error.message; }
    ok(message.includes('1000'), `an error naming the limit, got "${message}"`);
  },
};
