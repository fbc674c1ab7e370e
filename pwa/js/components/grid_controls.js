// Which axes go across (X), down (Y) and into separate grids (Z), and the value every other axis is fixed at.
import { html } from '../lib.js';
import { offGridAxes, valueLabel, withAxis } from '../grid_layout.js';

function AxisSelect({ role, label, axes, choice, onChoice, optional }) {
  const id = `grid-axis-${role}`;
  const current = choice[role];
  return html`
    <div class="grid-pick">
      <label for=${id}>${label}</label>
      <select id=${id} value=${current === null ? '' : String(current)}
        onChange=${(event) => {
          const raw = event.currentTarget.value;
          onChoice(withAxis(choice, role, raw === '' ? null : Number(raw)));
        }}>
        ${optional && html`<option value="">none</option>`}
        ${axes.map((axis, i) => html`<option value=${String(i)} key=${axis.name}>${axis.name} (${axis.values.length})</option>`)}
      </select>
    </div>`;
}

export function GridControls({ axes, choice, onChoice }) {
  if (!axes.length) return html`<p class="muted">Every cell of this experiment has the same parameters.</p>`;
  const fixed = offGridAxes(axes, choice);
  return html`
    <fieldset class="card grid-controls">
      <legend>Grid</legend>
      <div class="grid-picks">
        <${AxisSelect} role="x" label="Across (X)" axes=${axes} choice=${choice} onChoice=${onChoice} />
        <${AxisSelect} role="y" label="Down (Y)" axes=${axes} choice=${choice} onChoice=${onChoice} optional />
        <${AxisSelect} role="z" label="Separate grids (Z)" axes=${axes} choice=${choice} onChoice=${onChoice} optional />
      </div>
      ${fixed.length > 0 && html`
        <div class="grid-picks">
          ${fixed.map((i) => {
            const axis = axes[i];
            const id = `grid-fixed-${i}`;
            const value = choice.fixed[axis.name] ?? 0;
            return html`
              <div class="grid-pick" key=${axis.name}>
                <label for=${id}>Fixed ${axis.name}</label>
                <select id=${id} value=${String(value)}
                  onChange=${(event) => onChoice({ ...choice, fixed: { ...choice.fixed, [axis.name]: Number(event.currentTarget.value) } })}>
                  ${axis.values.map((v, vi) => html`<option value=${String(vi)} key=${vi}>${valueLabel(axis, v)}</option>`)}
                </select>
              </div>`;
          })}
        </div>`}
    </fieldset>`;
}
