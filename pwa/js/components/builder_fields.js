// The builder's form controls: a labelled field with its error (the daemon's message, tied to the input for
// screen readers), the base generation params, and a picker that appends a daemon-listed name to a values field.
import { html } from '../lib.js';

export function fieldId(name) {
  return `builder-${name.replace(/[^a-z0-9_-]/gi, '-')}`;
}

// One labelled input (or textarea / select via `as`), its hint and its error.
export function Field({ name, label, value, onInput, error, hint, as = 'input', type = 'text', options = null, rows = 3, inputmode, placeholder, disabled = false }) {
  const id = fieldId(name);
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
  const common = {
    id, name, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': described, placeholder, disabled,
  };
  let control;
  if (as === 'textarea') {
    control = html`<textarea ...${common} rows=${rows} value=${value} onInput=${(e) => onInput(e.currentTarget.value)} />`;
  } else if (as === 'select') {
    control = html`<select ...${common} value=${value} onChange=${(e) => onInput(e.currentTarget.value)}>
      ${options.map((option) => html`<option value=${option.value} selected=${option.value === value}>${option.label}</option>`)}
    </select>`;
  } else {
    control = html`<input ...${common} type=${type} inputmode=${inputmode} autocomplete="off" value=${value}
      onInput=${(e) => onInput(e.currentTarget.value)} />`;
  }
  return html`
    <div class=${`field field-${name}${error ? ' has-error' : ''}`}>
      <label for=${id}>${label}</label>
      ${control}
      ${hint && html`<p class="hint muted" id=${`${id}-hint`}>${hint}</p>`}
      ${error && html`<p class="error" role="alert" id=${`${id}-error`}>${error}</p>`}
    </div>`;
}

// A select that appends the chosen name to a CSV values field ("Euler" -> "Euler, DPM++ 2M"), so names come from
// the daemon's lists without typing them.
export function AppendPicker({ label, names, current, onAppend }) {
  if (!names || names.length === 0) return null;
  const pick = (event) => {
    const name = event.currentTarget.value;
    event.currentTarget.value = '';
    if (!name) return;
    const text = current.trim();
    onAppend(text === '' ? name : `${text.replace(/,\s*$/, '')}, ${name}`);
  };
  return html`
    <select class="append-picker" aria-label=${label} onChange=${pick}>
      <option value="">${label}…</option>
      ${names.map((name) => html`<option value=${name}>${name}</option>`)}
    </select>`;
}

const LABELS = {
  prompt: 'Prompt', negative_prompt: 'Negative prompt', model: 'Model', sampler: 'Sampler', schedule: 'Schedule',
  steps: 'Steps', cfg_scale: 'CFG scale', seed: 'Seed (-1: random)', width: 'Width', height: 'Height',
  clip_skip: 'CLIP skip', eta: 'Eta',
};

// The params every cell shares. `hide` leaves out those another part of the form sets (a convergence
// experiment's axes); `setBy` maps a field to the sweep axis that overrides it, which the field says instead of
// taking input; a field the form does not know (from "run again") is still shown, as text.
export function BaseFields({ base, onChange, errors, models, samplers, hide = [], setBy = {} }) {
  const set = (field) => (value) => onChange({ ...base, [field]: value });
  const overridden = (field) => (setBy[field] ? { disabled: true, hint: `Set by the ${setBy[field]} axis` } : {});
  const shown = (field) => !hide.includes(field);
  const modelOptions = [{ value: '', label: `Default (${models ? models.default_model : '…'})` }]
    .concat((models ? models.models : []).map((m) => ({ value: m.name, label: m.name })));
  if (base.model && !modelOptions.some((o) => o.value === base.model)) modelOptions.push({ value: base.model, label: base.model });
  const samplerList = samplers ? samplers.samplers : [];
  const samplerOptions = samplerList.map((s) => ({ value: s.name, label: s.name }));
  if (!samplerOptions.some((o) => o.value === base.sampler)) samplerOptions.unshift({ value: base.sampler, label: base.sampler || '—' });
  const chosen = samplerList.find((s) => s.name === base.sampler);
  const scheduleOptions = (chosen ? chosen.schedules : ['Automatic']).map((s) => ({ value: s, label: s }));
  if (!scheduleOptions.some((o) => o.value === base.schedule)) scheduleOptions.push({ value: base.schedule, label: base.schedule });
  const known = new Set(['prompt', ...Object.keys(LABELS)]);
  const extra = Object.keys(base).filter((field) => !known.has(field) && shown(field));
  const numeric = (field) => html`
    <${Field} name=${field} label=${LABELS[field]} value=${base[field] ?? ''} onInput=${set(field)} error=${errors[field]}
      inputmode=${field === 'cfg_scale' || field === 'eta' ? 'decimal' : 'numeric'} ...${overridden(field)} />`;
  return html`
    <div class="base-fields">
      ${shown('negative_prompt') && html`<${Field} name="negative_prompt" label="Negative prompt" as="textarea" rows=${2}
        value=${base.negative_prompt ?? ''} onInput=${set('negative_prompt')} error=${errors.negative_prompt} />`}
      <div class="field-grid">
        ${shown('model') && html`<${Field} name="model" label="Model" as="select" options=${modelOptions} value=${base.model ?? ''}
          onInput=${set('model')} error=${errors.model} ...${overridden('model')} />`}
        ${shown('sampler') && html`<${Field} name="sampler" label="Sampler" as="select" options=${samplerOptions} value=${base.sampler ?? ''}
          onInput=${set('sampler')} error=${errors.sampler} ...${overridden('sampler')} />`}
        ${shown('schedule') && html`<${Field} name="schedule" label="Schedule" as="select" options=${scheduleOptions} value=${base.schedule ?? ''}
          onInput=${set('schedule')} error=${errors.schedule} ...${overridden('schedule')} />`}
        ${['steps', 'cfg_scale', 'seed', 'width', 'height'].filter(shown).map(numeric)}
        ${['clip_skip', 'eta'].filter((f) => f in base && shown(f)).map(numeric)}
        ${extra.map((field) => html`<${Field} name=${field} label=${field} value=${base[field]} onInput=${set(field)} error=${errors[field]} />`)}
      </div>
    </div>`;
}
