// The builder's draft turned into the daemon's requests, and back from a past experiment or image; expected
// values written out by hand from docs/rpc.md's shapes.
import {
  axisText, createRequest, draftFromExperiment, draftFromImage, emptyDraft, paramValue, planRequest,
} from '/app/js/builder_spec.js';
import { equal } from './assert.js';

function draftWith(changes) {
  const draft = emptyDraft();
  return { ...draft, ...changes, base: { ...draft.base, ...(changes.base || {}) } };
}

export const tests = {
  'numbers where the field is numeric, text where it does not read as one'() {
    equal([paramValue('steps', '20'), paramValue('cfg_scale', ' 7.5 '), paramValue('seed', '-1'), paramValue('steps', '2x')], [20, 7.5, -1, '2x']);
    equal(paramValue('prompt', '42'), '42');
  },
  'a sweep: base without empty fields, axes as typed, in order'() {
    const draft = draftWith({
      name: ' cats ',
      base: { prompt: 'a cat', width: '64', height: '64', steps: '2', model: '' },
      axes: [{ name: 'steps', values: '2-3' }, { name: 'sampler', values: 'Euler, Euler a' }, { name: 'seed', values: '  ' }],
    });
    equal(createRequest(draft), {
      method: 'experiments.create',
      params: {
        name: 'cats', priority: 0, vary_seed: false, kind: 'sweep',
        base: { prompt: 'a cat', negative_prompt: undefined, sampler: 'Euler a', schedule: 'Automatic', steps: 2, cfg_scale: 7, seed: -1, width: 64, height: 64 },
        axes: { steps: '2-3', sampler: 'Euler, Euler a' },
      },
    });
    equal(Object.keys(planRequest(draft).axes), ['steps', 'sampler']);
  },
  'a convergence experiment and its plan as axes in the daemon order'() {
    const draft = draftWith({ kind: 'convergence', base: { negative_prompt: 'blurry', width: '64', height: '64' } });
    draft.convergence = { prompts: 'a cat\n\n a dog, running \n', models: '', samplers: 'Euler, DPM2', steps: '2-4', seeds: '' };
    const { method, params } = createRequest(draft);
    equal(method, 'experiments.convergence');
    equal(params.prompts, ['a cat', 'a dog, running']);
    equal([params.samplers, params.steps, params.seeds, 'models' in params], ['Euler, DPM2', '2-4', '-1', false]);
    equal(params.base, { negative_prompt: 'blurry', schedule: 'Automatic', cfg_scale: 7, width: 64, height: 64 });
    const plan = planRequest(draft);
    equal(Object.keys(plan.axes), ['prompt', 'sampler', 'seed', 'steps']);
    equal(plan.axes.prompt, ['a cat', 'a dog, running']);
  },
  'a CFG experiment; its plan waits for the image, keeping its seed unless varied'() {
    const draft = draftWith({ kind: 'cfg', priority: '5' });
    draft.cfg = { image_id: '12', values: '3-12 [4]' };
    equal(createRequest(draft), { method: 'experiments.cfg', params: { image_id: 12, cfg: '3-12 [4]', name: '', priority: 5, vary_seed: false } });
    equal(planRequest(draft, null), null);
    const image = { prompt: 'a cat', seed: 1234, cfg_scale: 7 };
    equal(planRequest(draft, image), { base: image, axes: { cfg_scale: '3-12 [4]' }, vary_seed: false });
    equal(planRequest({ ...draft, vary_seed: true }, image).base.seed, -1);
  },
  'axis values written back in A1111 syntax, quoting commas and quotes'() {
    equal(axisText([2, 3.5, 'Euler a']), '2, 3.5, Euler a');
    equal(axisText(['a, b', 'say "hi"']), '"a, b", "say ""hi"""');
    equal(axisText('10-30 [5]'), '10-30 [5]');
  },
  'run again: a sweep comes back with its base and axes as given'() {
    const draft = draftFromExperiment({
      name: 'probe', kind: 'sweep', priority: 3,
      spec: { base: { prompt: 'a cat', steps: 30, width: 64, clip_skip: 2 }, axes: { seed: '1-6', sampler: ['Euler', 'Euler a'] }, vary_seed: true },
    });
    equal([draft.kind, draft.name, draft.priority, draft.vary_seed], ['sweep', 'probe (again)', '3', true]);
    equal([draft.base.prompt, draft.base.steps, draft.base.width, draft.base.height, draft.base.clip_skip], ['a cat', '30', '64', '512', '2']);
    equal(draft.axes, [{ name: 'seed', values: '1-6' }, { name: 'sampler', values: 'Euler, Euler a' }]);
  },
  'run again: a convergence experiment comes back as one, single values folded into base read back'() {
    const draft = draftFromExperiment({
      name: 'c', kind: 'convergence', priority: 0,
      spec: { base: { prompt: 'a cat', model: 'tiny-sd', seed: -1 }, axes: { sampler: ['Euler', 'DPM2'], steps: [2, 4, 6] } },
    });
    equal(draft.kind, 'convergence');
    equal(draft.convergence, { prompts: 'a cat', models: 'tiny-sd', samplers: 'Euler, DPM2', steps: '2, 4, 6', seeds: '-1' });
  },
  'run again from an image: its exact params and the image for CFG'() {
    const draft = draftFromImage({ id: 7, params: { prompt: 'a cat', seed: 99, steps: 2, cfg_scale: 7.5 } });
    equal([draft.kind, draft.base.prompt, draft.base.seed, draft.base.cfg_scale, draft.cfg.image_id], ['sweep', 'a cat', '99', '7.5', '7']);
    equal(draft.axes, []);
  },
};
