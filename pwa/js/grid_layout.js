// Where each cell of an experiment sits on its axes, and which cell goes where on the comparison grid. The same
// rule as the daemon's grids (cauldrond/experiments/layout.py): with resolved axes a cell's index decodes to its
// coordinates, first axis outermost; an experiment given as explicit cells gets one axis per parameter that
// differs between its cells.

const valueKey = (value) => JSON.stringify(value);

// The value index on each axis of cell `index`: mixed radix, first axis outermost (itertools.product's order).
export function coordinatesOf(index, axes) {
  const coords = new Array(axes.length);
  let rest = index;
  for (let i = axes.length - 1; i >= 0; i -= 1) {
    const size = axes[i].values.length;
    coords[i] = rest % size;
    rest = Math.floor(rest / size);
  }
  return coords;
}

// {axes: [{name, values}], coords: Map(job id -> [index per axis])}.
export function experimentLayout(spec, jobs) {
  const resolved = (spec && spec.resolved_axes) || [];
  if (resolved.length) {
    const axes = resolved.map((axis) => ({ name: String(axis.name), values: [...axis.values] }));
    return { axes, coords: new Map(jobs.map((job) => [job.id, coordinatesOf(job.idx, axes)])) };
  }
  const fields = [];
  for (const job of jobs) {
    for (const name of Object.keys(job.params || {})) if (!fields.includes(name)) fields.push(name);
  }
  const axes = [];
  for (const name of fields) {
    const seen = new Map();
    for (const job of jobs) {
      const value = (job.params || {})[name];
      if (!seen.has(valueKey(value))) seen.set(valueKey(value), value);
    }
    if (seen.size > 1) axes.push({ name, values: [...seen.values()] });
  }
  const coords = new Map(jobs.map((job) => [
    job.id,
    axes.map((axis) => axis.values.findIndex((v) => valueKey(v) === valueKey((job.params || {})[axis.name]))),
  ]));
  return { axes, coords };
}

// How a value reads on a label: a random seed says so; lists (a size) read as text.
export function valueLabel(axis, value) {
  if (axis.name === 'seed' && value === -1) return 'random';
  if (Array.isArray(value)) return value.join('×');
  return String(value);
}

// The first choice of axes: the innermost axes that vary (steps in a convergence experiment) across, the next
// down; every other axis at its first value.
export function defaultChoice(axes) {
  const varying = axes.map((axis, i) => (axis.values.length > 1 ? i : -1)).filter((i) => i >= 0);
  const x = varying.length ? varying[varying.length - 1] : (axes.length ? 0 : null);
  const y = varying.length > 1 ? varying[varying.length - 2] : null;
  return { x, y, z: null, fixed: {} };
}

// Put axis `axis` (an index, or null to clear y/z) in `role` ('x', 'y' or 'z'); a role that held it takes this
// role's old axis, so picking the current Y as X swaps them.
export function withAxis(choice, role, axis) {
  const next = { ...choice, fixed: { ...choice.fixed } };
  for (const other of ['x', 'y', 'z']) {
    if (other !== role && axis !== null && next[other] === axis) next[other] = choice[role];
  }
  next[role] = axis;
  if (next.x === null) { next.x = next.y; next.y = null; }
  return next;
}

// Axes off the grid that have several values: each needs a fixed value (its first unless chosen).
export function offGridAxes(axes, choice) {
  return axes.map((_, i) => i).filter((i) => axes[i].values.length > 1 && ![choice.x, choice.y, choice.z].includes(i));
}

export function jobsByCoords(layout, jobs) {
  const found = new Map();
  for (const job of jobs) {
    const coords = layout.coords.get(job.id);
    if (coords) found.set(coords.join(','), job);
  }
  return found;
}

// The grid for `choice`: columns are X's values, rows Y's (one row without Y), one panel per Z value (one without
// Z). Each cell is {coords, job} (job null when the experiment has no such cell).
export function gridLayout(layout, jobs, choice) {
  const { axes } = layout;
  const byCoords = jobsByCoords(layout, jobs);
  const base = axes.map((axis, i) => {
    const chosen = choice.fixed[axis.name];
    return Number.isInteger(chosen) && chosen >= 0 && chosen < axis.values.length ? chosen : 0;
  });
  const size = (i) => (i === null || i === undefined ? 1 : axes[i].values.length);
  const panels = [];
  for (let zi = 0; zi < size(choice.z); zi += 1) {
    const rows = [];
    for (let yi = 0; yi < size(choice.y); yi += 1) {
      const row = [];
      for (let xi = 0; xi < size(choice.x); xi += 1) {
        const coords = [...base];
        if (choice.x !== null) coords[choice.x] = xi;
        if (choice.y !== null) coords[choice.y] = yi;
        if (choice.z !== null) coords[choice.z] = zi;
        row.push({ coords, job: byCoords.get(coords.join(',')) || null });
      }
      rows.push(row);
    }
    panels.push({ z: choice.z === null ? null : zi, rows });
  }
  return { panels, columns: size(choice.x), rows: size(choice.y) };
}

// The cell next to `coords` along axis `axis` (step -1 or +1): {coords, job}, or null past either end.
export function neighbour(layout, jobs, coords, axis, step) {
  const next = [...coords];
  next[axis] += step;
  if (next[axis] < 0 || next[axis] >= layout.axes[axis].values.length) return null;
  return { coords: next, job: jobsByCoords(layout, jobs).get(next.join(',')) || null };
}
