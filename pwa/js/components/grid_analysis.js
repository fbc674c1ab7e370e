// Convergence analysis (experiments.analyze): per sampler and schedule, after how many steps the image stops
// changing (the distance to the series' highest-step image stays under the threshold), the daemon's plot, and
// seconds per step. Run on demand (it decodes every image), or at once for a finished convergence experiment.
import { html, useCallback, useEffect, useState } from '../lib.js';
import { useAction, useRpc } from '../store.js';
import { ErrorText } from './ui.js';

const fixed = (value, digits = 1) => (typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '—');

function ConvergenceTable({ convergence }) {
  const rows = convergence.by_sampler || [];
  if (!rows.length) {
    return html`<p class="muted">No series to analyse: it needs cells that differ only in steps (at least two step counts).</p>`;
  }
  return html`
    <div class="table-scroll" tabindex="0" role="region" aria-label="Convergence by sampler">
      <table class="analysis-table">
        <caption>Converged at (steps), ${convergence.metric} under ${convergence.threshold}</caption>
        <thead><tr>
          <th scope="col">Sampler</th><th scope="col">Series</th><th scope="col">Converged</th>
          <th scope="col">Never</th><th scope="col">Median</th><th scope="col">Q1–Q3</th><th scope="col">Min–max</th>
        </tr></thead>
        <tbody>
          ${rows.map((row) => {
            const at = row.converged_at;
            return html`<tr key=${row.label}>
              <th scope="row">${row.label}</th><td>${row.series}</td><td>${row.converged}</td><td>${row.never_converged}</td>
              <td>${at ? fixed(at.median) : '—'}</td><td>${at ? `${fixed(at.q1)}–${fixed(at.q3)}` : '—'}</td>
              <td>${at ? `${at.min}–${at.max}` : '—'}</td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>`;
}

function TimingTable({ timing }) {
  const rows = (timing && timing.by_sampler) || [];
  if (!rows.length) return null;
  return html`
    <div class="table-scroll" tabindex="0" role="region" aria-label="Time by sampler">
      <table class="analysis-table">
        <caption>Time by sampler</caption>
        <thead><tr><th scope="col">Sampler</th><th scope="col">Images</th><th scope="col">s / image (median)</th><th scope="col">s / step (median)</th></tr></thead>
        <tbody>
          ${rows.map((row) => html`<tr key=${row.label}>
            <th scope="row">${row.label}</th><td>${row.count}</td>
            <td>${fixed(row.seconds_per_image.median, 2)}</td><td>${fixed(row.seconds_per_step.median, 3)}</td>
          </tr>`)}
        </tbody>
      </table>
    </div>`;
}

export function GridAnalysis({ experiment }) {
  const rpc = useRpc();
  const [metric, setMetric] = useState('mad');
  const [result, setResult] = useState(null);
  const [analyze, state] = useAction(useCallback(async () => {
    setResult(await rpc.call('experiments.analyze', { experiment_id: experiment.id, metric }));
  }, [rpc, experiment.id, metric]));
  const finished = ['done', 'failed', 'cancelled'].includes(experiment.status);
  useEffect(() => {
    if (experiment.kind === 'convergence' && finished && !result) analyze();
  }, [experiment.kind, finished]);
  return html`
    <section class="card analysis" aria-labelledby="analysis-title">
      <h2 id="analysis-title">Convergence</h2>
      <div class="row">
        <label for="analysis-metric" class="inline-label">Metric</label>
        <select id="analysis-metric" class="narrow" value=${metric} onChange=${(event) => setMetric(event.currentTarget.value)}>
          <option value="mad">mean absolute difference</option>
          <option value="ssim">1 − SSIM</option>
        </select>
        <button type="button" disabled=${state.busy} onClick=${analyze}>${state.busy ? 'Analysing…' : 'Analyse'}</button>
      </div>
      <${ErrorText} error=${state.error} />
      ${result && html`
        <${ConvergenceTable} convergence=${result.convergence} />
        ${result.plot && html`<img class="analysis-plot" src=${result.plot.url} alt="Convergence plot: distance to the final image against steps, one line per sampler" />`}
        <${TimingTable} timing=${result.timing} />`}
    </section>`;
}
