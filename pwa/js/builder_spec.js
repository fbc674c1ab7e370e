// The experiment builder's draft (what the user is typing, kept as the strings the inputs hold) and the RPC
// requests it stands for: experiments.create / .convergence / .cfg to queue it, experiments.plan to preview it.
// Values are never parsed here: axis fields go to the daemon as typed, in A1111's syntax, and the daemon's plan
// (or its error) says what they expand to. Pure, so the in-browser unit tests can check it by hand.

export const KINDS = [
  { id: 'sweep', label: 'Sweep', hint: 'Any parameters as axes; every combination is a cell.' },
  { id: 'convergence', label: 'Convergence', hint: 'Prompts × models × samplers × seeds × steps: where each sampler settles.' },
  { id: 'cfg', label: 'CFG from an image', hint: 'One image again at each guidance scale, same seed.' },
];

// Every axis the daemon knows (cauldrond/experiments/axes.py AXIS_NAMES), the usual ones first.
export const AXIS_NAMES = [
  'steps', 'cfg_scale', 'sampler', 'schedule', 'seed', 'model', 'size', 'prompt_sr',
  'width', 'height', 'clip_skip', 'eta', 'prompt', 'negative_prompt',
];
// priority and image_id are not cell params, but are integers typed into fields the same way.
const INTEGER_FIELDS = new Set(['steps', 'seed', 'width', 'height', 'clip_skip', 'priority', 'image_id']);
const FLOAT_FIELDS = new Set(['cfg_scale', 'eta']);
const NUMBER = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;
// Convergence's axes in the daemon's order (cauldrond/experiments/kinds.py CONVERGENCE_AXES).
const CONVERGENCE_AXES = ['prompt', 'model', 'sampler', 'seed', 'steps'];

export function emptyDraft() {
  return {
    kind: 'sweep',
    name: '',
    priority: '0',
    vary_seed: false,
    base: {
      prompt: '', negative_prompt: '', model: '', sampler: 'Euler a', schedule: 'Automatic',
      steps: '20', cfg_scale: '7', seed: '-1', width: '512', height: '512',
    },
    axes: [{ name: 'steps', values: '' }],
    convergence: { prompts: '', models: '', samplers: 'Euler, Euler a', steps: '10-40 [4]', seeds: '-1' },
    cfg: { image_id: '', values: '3-12 [4]' },
  };
}

// One parameter as the daemon takes it: a number where the field is numeric and the text reads as one; otherwise
// the text itself, so the daemon names what is wrong with it at its field.
export function paramValue(field, text) {
  const value = typeof text === 'string' ? text : String(text);
  if ((INTEGER_FIELDS.has(field) || FLOAT_FIELDS.has(field)) && NUMBER.test(value)) return Number(value);
  return value;
}

// The draft's base params; an empty field is left out, so the daemon's default (or default_model) applies.
export function baseParams(base, leaveOut = []) {
  const params = {};
  for (const [field, text] of Object.entries(base)) {
    if (leaveOut.includes(field) || String(text).trim() === '') continue;
    params[field] = paramValue(field, text);
  }
  return params;
}

function common(draft) {
  return { name: draft.name.trim(), priority: paramValue('priority', draft.priority || '0'), vary_seed: !!draft.vary_seed };
}

function sweepAxes(draft) {
  const axes = {};
  for (const row of draft.axes) if (row.name && row.values.trim() !== '') axes[row.name] = row.values;
  return axes;
}

function promptLines(text) {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
}

function convergenceAxes(draft) {
  const given = draft.convergence;
  const axes = { prompt: promptLines(given.prompts) };
  if (given.models.trim() !== '') axes.model = given.models;
  axes.sampler = given.samplers;
  axes.seed = given.seeds.trim() === '' ? '-1' : given.seeds;
  axes.steps = given.steps;
  return axes;
}

// The request that queues the draft: {method, params}.
export function createRequest(draft) {
  const { kind } = draft;
  if (kind === 'convergence') {
    const axes = convergenceAxes(draft);
    const params = {
      ...common(draft),
      base: baseParams(draft.base, CONVERGENCE_AXES),
      prompts: axes.prompt,
      samplers: axes.sampler,
      steps: axes.steps,
      seeds: axes.seed,
    };
    if (axes.model !== undefined) params.models = axes.model;
    return { method: 'experiments.convergence', params };
  }
  if (kind === 'cfg') {
    const { name, priority, vary_seed: varySeed } = common(draft);
    return {
      method: 'experiments.cfg',
      params: { image_id: paramValue('image_id', draft.cfg.image_id), cfg: draft.cfg.values, name, priority, vary_seed: varySeed },
    };
  }
  return { method: 'experiments.create', params: { ...common(draft), kind: 'sweep', base: baseParams(draft.base), axes: sweepAxes(draft) } };
}

// The dry run of the draft (experiments.plan takes experiments.create's shape, so the named kinds are given as
// the base and axes the daemon reduces them to). A CFG plan needs the image's params (`imageParams`, from
// images.get); null until they are known.
export function planRequest(draft, imageParams = null) {
  const { vary_seed: varySeed } = common(draft);
  if (draft.kind === 'convergence') {
    return { base: baseParams(draft.base, CONVERGENCE_AXES), axes: convergenceAxes(draft), vary_seed: varySeed };
  }
  if (draft.kind === 'cfg') {
    if (!imageParams) return null;
    const base = { ...imageParams };
    if (varySeed) base.seed = -1;
    return { base, axes: { cfg_scale: draft.cfg.values }, vary_seed: varySeed };
  }
  return { base: baseParams(draft.base), axes: sweepAxes(draft), vary_seed: varySeed };
}

// A list of axis values written back in A1111's syntax: CSV, quoting a value that holds a comma or a quote.
export function axisText(values) {
  if (typeof values === 'string') return values;
  return values.map((value) => {
    const text = String(value);
    return /[",]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }).join(', ');
}

function textBase(params) {
  const base = emptyDraft().base;
  for (const [field, value] of Object.entries(params || {})) base[field] = value === null ? '' : String(value);
  return base;
}

// "Run again with changes" from an experiment (experiments.get's experiment, spec included): its base and axes as
// given; a convergence experiment comes back as a convergence draft, every other kind as the equivalent sweep.
export function draftFromExperiment(experiment) {
  const spec = experiment.spec || {};
  const axes = spec.axes || {};
  const draft = {
    ...emptyDraft(),
    name: experiment.name ? `${experiment.name} (again)` : '',
    priority: String(experiment.priority || 0),
    vary_seed: !!spec.vary_seed,
    base: textBase(spec.base),
  };
  if (experiment.kind === 'convergence') {
    const from = (field, fallback) => (field in axes ? axisText(axes[field]) : String(spec.base?.[field] ?? fallback));
    const prompts = 'prompt' in axes ? (typeof axes.prompt === 'string' ? [axes.prompt] : axes.prompt) : [spec.base?.prompt ?? ''];
    draft.kind = 'convergence';
    draft.convergence = {
      prompts: prompts.join('\n'),
      models: 'model' in axes || spec.base?.model ? from('model', '') : '',
      samplers: from('sampler', 'Euler a'),
      steps: from('steps', 20),
      seeds: from('seed', -1),
    };
    return draft;
  }
  draft.axes = Object.entries(axes).map(([name, values]) => ({ name, values: axisText(values) }));
  return draft;
}

// "Run again with changes" from an image (images.get's image): its exact params, seed included, as a sweep's
// base, and the image chosen for a CFG experiment.
export function draftFromImage(image) {
  return { ...emptyDraft(), name: '', base: textBase(image.params), axes: [], cfg: { image_id: String(image.id), values: '3-12 [4]' } };
}
