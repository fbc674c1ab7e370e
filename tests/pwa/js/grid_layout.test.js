// Grid layout, checked against positions worked out by hand from the rule in docs/rpc.md ("cartesian product,
// first axis outermost"): with axes of sizes (a, b, c) cell index i sits at (i div bc, (i div c) mod b, i mod c).
import {
  coordinatesOf, defaultChoice, experimentLayout, gridLayout, neighbour, offGridAxes, withAxis,
} from '/app/js/grid_layout.js';
import { equal } from './assert.js';

// cfg_scale (3, 7) x steps (2, 4, 6): six cells, job ids 10..15 for indexes 0..5.
const CFG_STEPS = { resolved_axes: [{ name: 'cfg_scale', values: [3, 7] }, { name: 'steps', values: [2, 4, 6] }] };
const cfgStepsJobs = [0, 1, 2, 3, 4, 5].map((idx) => ({ id: 10 + idx, idx, image_id: 100 + idx, params: {} }));

// prompt (a, b) x cfg_scale (3, 7) x steps (2, 4): eight cells, ids 20..27.
const THREE = {
  resolved_axes: [
    { name: 'prompt', values: ['a', 'b'] }, { name: 'cfg_scale', values: [3, 7] }, { name: 'steps', values: [2, 4] },
  ],
};
const threeJobs = [0, 1, 2, 3, 4, 5, 6, 7].map((idx) => ({ id: 20 + idx, idx, image_id: 200 + idx, params: {} }));

const ids = (panel) => panel.rows.map((row) => row.map((cell) => (cell.job ? cell.job.id : null)));

export const tests = {
  'cell index to coordinates, first axis outermost'() {
    const two3 = [{ values: [0, 1] }, { values: [0, 1, 2] }];
    equal(coordinatesOf(4, two3), [1, 1]); // 4 = 1*3 + 1
    equal(coordinatesOf(5, two3), [1, 2]);
    equal(coordinatesOf(7, [{ values: [0, 1] }, { values: [0, 1] }, { values: [0, 1, 2] }]), [1, 0, 1]); // 7 = 1*6 + 0*3 + 1
  },
  'layout from resolved axes'() {
    const layout = experimentLayout(CFG_STEPS, cfgStepsJobs);
    equal(layout.axes.map((a) => a.name), ['cfg_scale', 'steps']);
    equal(layout.coords.get(14), [1, 1]);
    equal(layout.coords.get(12), [0, 2]);
  },
  'layout of explicit cells: one axis per parameter that differs'() {
    const jobs = [
      { id: 1, idx: 0, params: { prompt: 'a', sampler: 'Euler', steps: 2 } },
      { id: 2, idx: 1, params: { prompt: 'a', sampler: 'Euler', steps: 4 } },
      { id: 3, idx: 2, params: { prompt: 'a', sampler: 'DDIM', steps: 2 } },
    ];
    const layout = experimentLayout({ resolved_axes: [] }, jobs);
    equal(layout.axes, [{ name: 'sampler', values: ['Euler', 'DDIM'] }, { name: 'steps', values: [2, 4] }]);
    equal(layout.coords.get(3), [1, 0]);
    equal(layout.coords.get(2), [0, 1]);
  },
  'steps across and cfg down'() {
    const layout = experimentLayout(CFG_STEPS, cfgStepsJobs);
    const grid = gridLayout(layout, cfgStepsJobs, { x: 1, y: 0, z: null, fixed: {} });
    equal(grid.panels.length, 1);
    equal(ids(grid.panels[0]), [[10, 11, 12], [13, 14, 15]]);
  },
  'x and y swapped transposes the grid'() {
    const layout = experimentLayout(CFG_STEPS, cfgStepsJobs);
    const swapped = withAxis({ x: 1, y: 0, z: null, fixed: {} }, 'x', 0);
    equal([swapped.x, swapped.y], [0, 1]);
    equal(ids(gridLayout(layout, cfgStepsJobs, swapped).panels[0]), [[10, 13], [11, 14], [12, 15]]);
  },
  'a missing cell is an empty place'() {
    const layout = experimentLayout(CFG_STEPS, cfgStepsJobs);
    const without = cfgStepsJobs.filter((job) => job.idx !== 4);
    equal(ids(gridLayout(layout, without, { x: 1, y: 0, z: null, fixed: {} }).panels[0]), [[10, 11, 12], [13, null, 15]]);
  },
  'an axis off the grid is fixed at the chosen value'() {
    const layout = experimentLayout(THREE, threeJobs);
    const choice = { x: 2, y: 1, z: null, fixed: { prompt: 1 } };
    equal(offGridAxes(layout.axes, choice), [0]);
    // prompt b (index 1): cells 4..7, i.e. ids 24..27; cfg down, steps across
    equal(ids(gridLayout(layout, threeJobs, choice).panels[0]), [[24, 25], [26, 27]]);
    // not chosen: its first value
    equal(ids(gridLayout(layout, threeJobs, { ...choice, fixed: {} }).panels[0]), [[20, 21], [22, 23]]);
  },
  'z makes one panel per value'() {
    const layout = experimentLayout(THREE, threeJobs);
    const grid = gridLayout(layout, threeJobs, { x: 2, y: 1, z: 0, fixed: {} });
    equal(grid.panels.map((p) => p.z), [0, 1]);
    equal(ids(grid.panels[1]), [[24, 25], [26, 27]]);
    equal(grid.panels[1].rows[1][1].coords, [1, 1, 1]);
  },
  'choosing the z axis as x leaves x to the old z (none), and y moves across'() {
    equal(withAxis({ x: 2, y: 1, z: 0, fixed: {} }, 'x', 0), { x: 0, y: 1, z: 2, fixed: {} });
    equal(withAxis({ x: 2, y: 1, z: null, fixed: {} }, 'z', 2), { x: 1, y: null, z: 2, fixed: {} });
    equal(withAxis({ x: 2, y: 1, z: null, fixed: {} }, 'y', null), { x: 2, y: null, z: null, fixed: {} });
  },
  'neighbour along an axis, none past the ends'() {
    const layout = experimentLayout(CFG_STEPS, cfgStepsJobs);
    equal(neighbour(layout, cfgStepsJobs, [0, 1], 1, 1).job.id, 12);
    equal(neighbour(layout, cfgStepsJobs, [0, 1], 0, 1).job.id, 14);
    equal(neighbour(layout, cfgStepsJobs, [0, 2], 1, 1), null);
    equal(neighbour(layout, cfgStepsJobs, [0, 0], 0, -1), null);
  },
  'first choice: the innermost varying axis across, the next down'() {
    const axes = [{ name: 'prompt', values: ['a'] }, { name: 'cfg_scale', values: [3, 7] }, { name: 'steps', values: [2, 4, 6] }];
    equal(defaultChoice(axes), { x: 2, y: 1, z: null, fixed: {} });
    equal(defaultChoice([{ name: 'steps', values: [2, 4] }]), { x: 0, y: null, z: null, fixed: {} });
  },
};
