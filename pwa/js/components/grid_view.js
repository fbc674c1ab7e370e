// The comparison grid: a table of thumbnails (the daemon's 256 px WebP, never the full PNG), X across, Y down, one
// table per Z value. A cell still queued or running says so; tapping a finished cell opens the viewer.
import { html } from '../lib.js';
import { valueLabel } from '../grid_layout.js';

function CellContent({ job, label, onOpen }) {
  if (!job) return html`<span class="grid-empty">no cell</span>`;
  if (job.image_id) {
    return html`
      <button type="button" class="grid-cell" aria-label=${`Open ${label}`} onClick=${() => onOpen(job)}>
        <img src=${`/thumbs/256/${job.image_id}.webp`} alt="" loading="lazy" decoding="async" />
      </button>`;
  }
  const text = job.status === 'failed' ? 'failed' : job.status === 'cancelled' ? 'cancelled' : job.status === 'running' ? 'running…' : 'queued';
  return html`<span class=${`grid-pending grid-${job.status}`} title=${job.last_error || ''}>${text}</span>`;
}

function cellLabel(axes, coords, choice) {
  return [choice.x, choice.y, choice.z]
    .filter((i) => i !== null)
    .map((i) => `${axes[i].name} ${valueLabel(axes[i], axes[i].values[coords[i]])}`)
    .join(', ');
}

export function GridView({ axes, choice, grid, onOpen }) {
  const xAxis = choice.x === null ? null : axes[choice.x];
  const yAxis = choice.y === null ? null : axes[choice.y];
  const zAxis = choice.z === null ? null : axes[choice.z];
  return html`
    <div class="grid-panels">
      ${grid.panels.map((panel) => {
        const title = zAxis ? `${zAxis.name}: ${valueLabel(zAxis, zAxis.values[panel.z])}` : 'Comparison grid';
        return html`
          <div class="grid-scroll" tabindex="0" role="region" aria-label=${title} key=${String(panel.z)}>
            <table class="grid-table">
              <caption>${title}</caption>
              ${xAxis && html`
                <thead><tr>
                  <th scope="col">${yAxis ? `${yAxis.name} \\ ${xAxis.name}` : xAxis.name}</th>
                  ${xAxis.values.map((v, i) => html`<th scope="col" key=${i}>${valueLabel(xAxis, v)}</th>`)}
                </tr></thead>`}
              <tbody>
                ${panel.rows.map((row, ri) => html`
                  <tr key=${ri}>
                    <th scope="row">${yAxis ? valueLabel(yAxis, yAxis.values[ri]) : ''}</th>
                    ${row.map((cell, ci) => html`
                      <td key=${ci}><${CellContent} job=${cell.job} label=${cellLabel(axes, cell.coords, choice) || 'image'} onOpen=${(job) => onOpen(cell, job)} /></td>`)}
                  </tr>`)}
              </tbody>
            </table>
          </div>`;
      })}
    </div>`;
}
