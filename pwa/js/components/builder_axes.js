// A sweep's axes: each row an axis name and its values in A1111's syntax ("1-5", "1-10 (+2)", "10-30 [5]",
// "a, b, c"). Under each row, what the daemon's dry run expanded it to, or the daemon's error for it: the parser
// lives in the daemon only, so the preview can never disagree with what will run.
import { html } from '../lib.js';
import { AXIS_NAMES } from '../builder_spec.js';
import { AppendPicker, fieldId } from './builder_fields.js';

const SYNTAX_HINT = 'A list "a, b, c" or a range: 1-5, 1-10 (+2) step, 10-30 [5] count.';
// Fields an axis writes besides its own name (cauldrond/experiments/cells.py _WRITTEN_BY): their errors belong to it.
const WRITES = { size: ['width', 'height'], prompt_sr: ['prompt', 'negative_prompt'] };

// The error for an axis row: one named after the axis or a field it writes.
export function axisError(errors, name) {
  if (errors[name]) return errors[name];
  for (const field of WRITES[name] || []) if (errors[field]) return errors[field];
  return null;
}

function previewText(values) {
  const shown = values.slice(0, 24).map((value) => String(value)).join(', ');
  return values.length > 24 ? `${shown} … (${values.length} values)` : `${shown} (${values.length} value${values.length === 1 ? '' : 's'})`;
}

function AxisRow({ row, index, axes, onChange, error, expanded, names }) {
  const id = fieldId(`axis-${index}`);
  const update = (changes) => onChange(axes.map((other, i) => (i === index ? { ...other, ...changes } : other)));
  const remove = () => onChange(axes.filter((_, i) => i !== index));
  const taken = new Set(axes.filter((_, i) => i !== index).map((other) => other.name));
  const pickable = names[row.name];
  const described = [`${id}-preview`, error && `${id}-error`].filter(Boolean).join(' ');
  return html`
    <li class=${`axis-row${error ? ' has-error' : ''}`} data-axis=${row.name}>
      <div class="axis-line">
        <div class="axis-name">
          <label for=${`${id}-name`}>Axis ${index + 1}</label>
          <select id=${`${id}-name`} value=${row.name} onChange=${(e) => update({ name: e.currentTarget.value })}>
            ${AXIS_NAMES.map((name) => html`<option value=${name} disabled=${taken.has(name)} selected=${name === row.name}>${name}</option>`)}
          </select>
        </div>
        <div class="axis-values">
          <label for=${`${id}-values`}>Values of ${row.name}</label>
          <input id=${`${id}-values`} name=${`axis-${row.name}`} autocomplete="off" value=${row.values}
            aria-invalid=${error ? 'true' : undefined} aria-describedby=${described}
            onInput=${(e) => update({ values: e.currentTarget.value })} />
        </div>
        <button type="button" class="ghost axis-remove" aria-label=${`Remove the ${row.name} axis`} onClick=${remove}>✕</button>
      </div>
      ${pickable && html`<${AppendPicker} label=${`Add a ${row.name}`} names=${pickable} current=${row.values}
        onAppend=${(values) => update({ values })} />`}
      <p class="axis-preview muted" id=${`${id}-preview`}>
        ${expanded ? html`→ ${previewText(expanded)}` : row.values.trim() === '' ? SYNTAX_HINT : ''}
      </p>
      ${error && html`<p class="error" role="alert" id=${`${id}-error`}>${error}</p>`}
    </li>`;
}

// `planAxes`: the plan's resolved axes [{name, values}]; `names`: axis -> names the daemon lists (model, sampler).
export function AxesEditor({ axes, onChange, errors, planAxes, names }) {
  const expandedFor = (name) => {
    const found = (planAxes || []).find((axis) => axis.name === name);
    return found ? found.values : null;
  };
  const unused = AXIS_NAMES.find((name) => !axes.some((row) => row.name === name));
  return html`
    <fieldset class="axes">
      <legend>Axes</legend>
      <p class="muted hint">Every combination of the values is one cell; the first axis is the outermost.</p>
      <ol class="axis-list">
        ${axes.map((row, index) => html`
          <${AxisRow} key=${index} row=${row} index=${index} axes=${axes} onChange=${onChange}
            error=${axisError(errors, row.name)} expanded=${row.values.trim() === '' ? null : expandedFor(row.name)} names=${names} />`)}
      </ol>
      ${unused && html`<button type="button" class="secondary" onClick=${() => onChange([...axes, { name: unused, values: '' }])}>Add an axis</button>`}
    </fieldset>`;
}
