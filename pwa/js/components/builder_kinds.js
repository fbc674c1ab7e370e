// The fields of the two named kinds: a convergence experiment's prompts, models, samplers, steps and seeds, and a
// CFG experiment's image and guidance scales. Value fields take A1111's syntax like a sweep's axes.
import { html } from '../lib.js';
import { useQuery } from '../store.js';
import { AppendPicker, Field } from './builder_fields.js';

function expanded(planAxes, name) {
  const found = (planAxes || []).find((axis) => axis.name === name);
  return found ? `→ ${found.values.join(', ')}` : undefined;
}

export function ConvergenceFields({ value, onChange, errors, planAxes, names }) {
  const set = (field) => (text) => onChange({ ...value, [field]: text });
  return html`
    <fieldset class="kind-fields">
      <legend>Convergence</legend>
      <${Field} name="prompt" label="Prompts, one a line" as="textarea" rows=${3} value=${value.prompts}
        onInput=${set('prompts')} error=${errors.prompt} />
      <${Field} name="model" label="Models (empty: the default model)" value=${value.models} onInput=${set('models')}
        error=${errors.model} hint=${expanded(planAxes, 'model')} />
      <${AppendPicker} label="Add a model" names=${names.model} current=${value.models} onAppend=${set('models')} />
      <${Field} name="sampler" label="Samplers" value=${value.samplers} onInput=${set('samplers')} error=${errors.sampler}
        hint=${expanded(planAxes, 'sampler')} />
      <${AppendPicker} label="Add a sampler" names=${names.sampler} current=${value.samplers} onAppend=${set('samplers')} />
      <${Field} name="steps" label="Steps" value=${value.steps} onInput=${set('steps')} error=${errors.steps}
        hint=${expanded(planAxes, 'steps') || 'e.g. 10-40 [4] (four counts from 10 to 40)'} />
      <${Field} name="seed" label="Seeds (-1: random)" value=${value.seeds} onInput=${set('seeds')} error=${errors.seed}
        hint=${expanded(planAxes, 'seed')} />
    </fieldset>`;
}

export function CfgFields({ value, onChange, errors, planAxes }) {
  const set = (field) => (text) => onChange({ ...value, [field]: text });
  const imageId = /^\s*\d+\s*$/.test(value.image_id) ? Number(value.image_id) : null;
  const image = useQuery('images.get', { image_id: imageId || 0 }, { enabled: imageId !== null });
  const found = imageId !== null && image.data ? image.data.image : null;
  const notFound = imageId !== null && image.error ? image.error.message : null;
  return html`
    <fieldset class="kind-fields">
      <legend>CFG from an image</legend>
      <${Field} name="image_id" label="Image id" value=${value.image_id} onInput=${set('image_id')} inputmode="numeric"
        error=${errors.image_id || notFound} hint="The image's number, as the gallery and the experiment grid show it." />
      ${found && html`
        <div class="cfg-image">
          <img src=${found.thumb_url || found.url} alt=${`Image ${found.id}: ${found.params.prompt}`} />
          <p class="muted">${found.params.prompt} · ${found.params.sampler} · ${found.params.steps} steps · seed ${found.seed}</p>
        </div>`}
      <${Field} name="cfg_scale" label="CFG scales" value=${value.values} onInput=${set('values')} error=${errors.cfg_scale}
        hint=${expanded(planAxes, 'cfg_scale') || 'e.g. 3-12 [4] (four scales from 3 to 12)'} />
    </fieldset>`;
}

// The image's params for a CFG plan (null until the image is known).
export function useCfgImageParams(draft) {
  const text = draft.cfg.image_id;
  const imageId = draft.kind === 'cfg' && /^\s*\d+\s*$/.test(text) ? Number(text) : null;
  const image = useQuery('images.get', { image_id: imageId || 0 }, { enabled: imageId !== null });
  return imageId !== null && image.data ? image.data.image.params : null;
}
