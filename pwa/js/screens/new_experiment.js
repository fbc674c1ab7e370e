// New experiment: the builder for the three kinds (sweep, convergence, CFG from an image). The draft is kept in
// localStorage until submitted (a reload or a reconnect loses nothing); the daemon's dry run (experiments.plan)
// follows the edits; every error the daemon reports is shown at its field. /new?from=<experiment id> and
// /new?image=<image id> open it pre-filled ("run again with changes").
import { html, useCallback, useEffect, useLocation, useRef } from '../lib.js';
import { useAction, useDraft, useQuery, useRpc } from '../store.js';
import { ErrorText } from '../components/ui.js';
import { BaseFields, Field } from '../components/builder_fields.js';
import { AxesEditor, axisError } from '../components/builder_axes.js';
import { CfgFields, ConvergenceFields, useCfgImageParams } from '../components/builder_kinds.js';
import { PlanSummary } from '../components/builder_plan.js';
import { PromptHistory } from '../components/builder_history.js';
import { KINDS, createRequest, draftFromExperiment, draftFromImage, emptyDraft, planRequest } from '../builder_spec.js';
import { fieldErrors } from '../field_errors.js';
import { useDebounced } from '../debounce.js';

const PLAN_DELAY_MS = 400;
// Fields a kind's own part of the form shows; any other field's error is shown at the submit button.
const KIND_FIELDS = {
  sweep: ['prompt', 'negative_prompt', 'model', 'sampler', 'schedule', 'steps', 'cfg_scale', 'seed', 'width', 'height', 'clip_skip', 'eta', 'name', 'priority'],
  convergence: ['prompt', 'negative_prompt', 'model', 'sampler', 'schedule', 'steps', 'cfg_scale', 'seed', 'width', 'height', 'name', 'priority'],
  cfg: ['image_id', 'cfg_scale', 'name', 'priority'],
};

// A stored draft from an older version of the form gets the fields it lacks.
function completeDraft(stored) {
  const empty = emptyDraft();
  return { ...empty, ...stored, base: { ...empty.base, ...stored.base }, convergence: { ...empty.convergence, ...stored.convergence }, cfg: { ...empty.cfg, ...stored.cfg } };
}

// Opened with ?from= or ?image=: fetch that experiment or image, replace the draft with it once, then drop the
// query so a reload keeps the edits instead of filling the form again.
function usePrefill(setDraft) {
  const { query, route } = useLocation();
  const from = /^\d+$/.test(query.from || '') ? Number(query.from) : null;
  const image = /^\d+$/.test(query.image || '') ? Number(query.image) : null;
  const experiment = useQuery('experiments.get', { experiment_id: from || 1, jobs_limit: 0 }, { enabled: from !== null });
  const picture = useQuery('images.get', { image_id: image || 1 }, { enabled: image !== null });
  useEffect(() => {
    if (from !== null && experiment.data && experiment.data.experiment.id === from) {
      setDraft(draftFromExperiment(experiment.data.experiment));
      route('/new', true);
    }
  }, [from, experiment.data]);
  useEffect(() => {
    if (image !== null && picture.data && picture.data.image.id === image) {
      setDraft(draftFromImage(picture.data.image));
      route('/new', true);
    }
  }, [image, picture.data]);
  if (from !== null && experiment.error) return experiment.error;
  if (image !== null && picture.error) return picture.error;
  return null;
}

// Base fields a sweep axis with values overrides: the axis's own field, or those a size / prompt S/R axis writes.
function overriddenBy(axes) {
  const setBy = {};
  for (const row of axes) {
    if (row.values.trim() === '') continue;
    const fields = row.name === 'size' ? ['width', 'height'] : row.name === 'prompt_sr' ? [] : [row.name];
    for (const field of fields) setBy[field] = row.name;
  }
  return setBy;
}

function idleText(draft) {
  if (draft.kind === 'cfg') return 'Choose an image to see the plan.';
  return 'Type a prompt to see the plan.';
}

function ready(draft) {
  if (draft.kind === 'convergence') return draft.convergence.prompts.trim() !== '';
  if (draft.kind === 'cfg') return /^\s*\d+\s*$/.test(draft.cfg.image_id);
  return draft.base.prompt.trim() !== '';
}

export function NewExperimentScreen() {
  const rpc = useRpc();
  const { route } = useLocation();
  const [stored, setDraft, clearDraft] = useDraft('new-experiment', emptyDraft());
  const draft = completeDraft(stored || {});
  const prefillError = usePrefill(setDraft);
  const update = (changes) => setDraft((old) => ({ ...completeDraft(old || {}), ...changes }));

  const models = useQuery('models.list', {});
  const samplers = useQuery('samplers.list', {});
  const names = {
    model: models.data ? models.data.models.map((m) => m.name) : [],
    sampler: samplers.data ? samplers.data.samplers.map((s) => s.name) : [],
    schedule: samplers.data ? [...new Set(samplers.data.samplers.flatMap((s) => s.schedules))] : [],
  };

  const imageParams = useCfgImageParams(draft);
  const wanted = ready(draft) ? planRequest(draft, imageParams) : null;
  const settled = useDebounced(wanted, PLAN_DELAY_MS);
  const plan = useQuery('experiments.plan', settled || {}, { enabled: settled !== null });
  const planShown = settled !== null ? plan : { data: null, error: null, loading: false };
  const waiting = wanted !== null && (JSON.stringify(wanted) !== JSON.stringify(settled) || plan.loading);

  const [submit, submitState] = useAction(useCallback(async (request) => {
    const result = await rpc.call(request.method, request.params);
    clearDraft();
    route(`/experiments/${result.experiment.id}`);
    return result;
  }, [rpc, route, clearDraft]));
  // The draft as it was submitted: the submit's error applies until the user changes something.
  const submittedDraft = useRef(null);
  const draftKey = JSON.stringify(draft);
  const submitted = !!submitState.error && submittedDraft.current === draftKey;
  const onSubmit = (event) => {
    event.preventDefault();
    submittedDraft.current = draftKey;
    submit(createRequest(draft));
  };

  // The newest word on the draft as it is: the submit's error while nothing changed since, else the plan's.
  const error = submitted ? submitState.error : planShown.error;
  const errors = fieldErrors(error);
  const axisClaims = draft.kind === 'sweep' ? draft.axes.filter((row) => row.values.trim() !== '' && axisError(errors, row.name)) : [];
  const baseErrors = { ...errors };
  for (const row of axisClaims) for (const field of [row.name, ...(row.name === 'size' ? ['width', 'height'] : [])]) delete baseErrors[field];
  const shownFields = KIND_FIELDS[draft.kind].concat(draft.kind === 'sweep' ? draft.axes.map((row) => row.name) : []);
  const unplaced = error && !Object.keys(errors).some((field) => shownFields.includes(field)) ? error : null;
  const planAxes = planShown.data && !planShown.error ? planShown.data.axes : null;

  return html`
    <section class="screen builder" aria-labelledby="new-heading">
      <h1 id="new-heading">New experiment</h1>
      ${prefillError && html`<${ErrorText} error=${prefillError} />`}
      <form class="panes builder-panes" onSubmit=${onSubmit} novalidate>
        <div class="builder-form stack">
          <fieldset class="kind-choice">
            <legend>Kind</legend>
            <div class="segmented">
              ${KINDS.map((kind) => html`
                <label class="segment">
                  <input type="radio" name="kind" value=${kind.id} checked=${draft.kind === kind.id} onChange=${() => update({ kind: kind.id })} />
                  <span>${kind.label}</span>
                </label>`)}
            </div>
            <p class="muted hint">${KINDS.find((kind) => kind.id === draft.kind).hint}</p>
          </fieldset>
          ${draft.kind === 'sweep' && html`
            <${Field} name="prompt" label="Prompt" as="textarea" value=${draft.base.prompt} error=${baseErrors.prompt}
              onInput=${(prompt) => update({ base: { ...draft.base, prompt } })} />`}
          ${draft.kind !== 'cfg' && html`<${PromptHistory} onUse=${(item) => (draft.kind === 'convergence'
            ? update({ convergence: { ...draft.convergence, prompts: item.prompt }, base: { ...draft.base, negative_prompt: item.negative_prompt } })
            : update({ base: { ...draft.base, prompt: item.prompt, negative_prompt: item.negative_prompt } }))} />`}
          ${draft.kind === 'convergence' && html`<${ConvergenceFields} value=${draft.convergence} errors=${errors}
            planAxes=${planAxes} names=${names} onChange=${(convergence) => update({ convergence })} />`}
          ${draft.kind === 'cfg' && html`<${CfgFields} value=${draft.cfg} errors=${errors} planAxes=${planAxes}
            onChange=${(cfg) => update({ cfg })} />`}
          ${draft.kind === 'sweep' && html`<${AxesEditor} axes=${draft.axes} errors=${errors} planAxes=${planAxes} names=${names}
            onChange=${(axes) => update({ axes })} />`}
          ${draft.kind !== 'cfg' && html`
            <details class="base-details" open=${draft.kind === 'sweep'}>
              <summary>${draft.kind === 'sweep' ? 'Parameters every cell shares' : 'Other parameters'}</summary>
              <${BaseFields} base=${draft.base} errors=${baseErrors} models=${models.data} samplers=${samplers.data}
                hide=${draft.kind === 'convergence' ? ['prompt', 'model', 'sampler', 'steps', 'seed'] : ['prompt']}
                setBy=${draft.kind === 'sweep' ? overriddenBy(draft.axes) : {}} onChange=${(base) => update({ base })} />
            </details>`}
          <div class="field-grid">
            <${Field} name="name" label="Name (optional)" value=${draft.name} error=${errors.name} onInput=${(name) => update({ name })} />
            <${Field} name="priority" label="Priority (higher runs first)" value=${draft.priority} inputmode="numeric"
              error=${errors.priority} onInput=${(priority) => update({ priority })} />
          </div>
          <label class="check"><input type="checkbox" checked=${draft.vary_seed} onChange=${(e) => update({ vary_seed: e.currentTarget.checked })} />
            A new random seed for every cell (A1111's "Keep -1 for seeds")</label>
        </div>
        <div class="builder-side">
          <div class="builder-sticky stack">
            <${PlanSummary} plan=${planShown.data} error=${planShown.error} waiting=${waiting} idleText=${idleText(draft)} />
            ${unplaced && html`<${ErrorText} error=${unplaced} />`}
            <div class="row builder-actions">
              <button type="submit" disabled=${submitState.busy}>${submitState.busy ? 'Queueing…' : 'Queue it'}</button>
              <button type="button" class="secondary" onClick=${() => clearDraft()}>Start over</button>
            </div>
          </div>
        </div>
      </form>
    </section>`;
}
