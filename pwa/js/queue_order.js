// The queue as the daemon runs it, and the priority changes that move one experiment in it.
//
// The daemon runs the highest priority first; experiments that share a priority take turns (round-robin, see
// cauldrond/queue/job_queue.py). So the order shown is priority, highest first, then age, and "move above X"
// needs a priority strictly higher than X's. Pure functions, so the in-browser unit tests can check them by hand.

export const MAX_PRIORITY = 1000; // experiments.set_priority accepts -1000..1000
const ACTIVE = new Set(['queued', 'running']);

// The experiments still to run (queued or running), in the order the queue serves them.
export function queueOrder(experiments) {
  return experiments
    .filter((experiment) => ACTIVE.has(experiment.status))
    .sort((a, b) => b.priority - a.priority || a.id - b.id);
}

// Whether `experiment` takes turns with the one before it (same priority), which the list says in words.
export function sharesTurnWithPrevious(ordered, index) {
  return index > 0 && ordered[index - 1].priority === ordered[index].priority;
}

// Where `id` goes: 'top', 'up' or 'down'. Returns the new order (ids), or null when it cannot move that way.
export function movedOrder(ordered, id, where) {
  const ids = ordered.map((experiment) => experiment.id);
  const from = ids.indexOf(id);
  if (from < 0) return null;
  const to = where === 'top' ? 0 : where === 'up' ? from - 1 : where === 'down' ? from + 1 : -1;
  if (to < 0 || to >= ids.length || to === from) return null;
  ids.splice(from, 1);
  ids.splice(to, 0, id);
  return ids;
}

// The priorities to set so the queue runs in `order` (ids) with `moved` strictly before the one below it and
// strictly after the one above it. Others keep their priority unless the move leaves no integer between two
// neighbours; then those above are raised, the fewest needed, walking up from the bottom. Experiments that took
// turns and are not next to the moved one keep taking turns. Returns [{experiment_id, priority}] to send, in
// the order to send them (highest first, so no intermediate state puts the moved one above an unmoved one).
export function prioritiesForOrder(ordered, order, moved) {
  const current = new Map(ordered.map((experiment) => [experiment.id, experiment.priority]));
  const next = order.map((id) => current.get(id));
  for (let i = order.length - 2; i >= 0; i -= 1) {
    const strict = order[i] === moved || order[i + 1] === moved;
    const least = strict ? next[i + 1] + 1 : next[i + 1];
    if (next[i] < least) next[i] = least;
  }
  const changes = [];
  order.forEach((id, i) => {
    if (next[i] !== current.get(id)) changes.push({ experiment_id: id, priority: next[i] });
  });
  return changes.sort((a, b) => b.priority - a.priority);
}

// The changes for one move, or [] when it cannot move that way; throws when a priority would pass the daemon's
// limit (the caller shows the message at the button).
export function moveChanges(ordered, id, where) {
  const order = movedOrder(ordered, id, where);
  if (order === null) return [];
  const changes = prioritiesForOrder(ordered, order, id);
  if (changes.some((change) => change.priority > MAX_PRIORITY)) {
    throw new Error(`priorities are at the limit of ${MAX_PRIORITY}; lower the others first`);
  }
  return changes;
}
