// The dry run of what is being built (experiments.plan): cells, model loads, batches and the estimated time, kept
// up to date as the user types. Announced politely, so a screen reader hears the new cell count.
import { html } from '../lib.js';
import { formatDuration } from './ui.js';

export function PlanSummary({ plan, error, waiting, idleText }) {
  let body;
  if (!plan && !error) body = html`<p class="muted">${waiting ? 'Working out the plan…' : idleText}</p>`;
  else if (!plan) body = html`<p class="muted">Fix the fields marked below to see the plan.</p>`;
  else {
    const estimate = plan.estimated_seconds === null || plan.estimated_seconds === undefined
      ? html`<span class="muted">unknown (${plan.estimate_basis})</span>`
      : html`about ${formatDuration(plan.estimated_seconds)}`;
    body = html`
      <dl class=${`plan-figures${error ? ' stale' : ''}`}>
        <div><dt>Cells</dt><dd data-plan="cells">${plan.cells}</dd></div>
        <div><dt>Model loads</dt><dd data-plan="model_loads">${plan.model_loads}</dd></div>
        <div><dt>Batches</dt><dd data-plan="batches">${plan.batches} <span class="muted">(up to ${plan.max_batch_size} a batch)</span></dd></div>
        <div><dt>Estimated time</dt><dd data-plan="estimated">${estimate}</dd></div>
      </dl>
      ${error && html`<p class="muted">The figures are from before the last change: fix the marked fields.</p>`}`;
  }
  return html`
    <section class="card plan" aria-labelledby="plan-heading" aria-busy=${waiting ? 'true' : 'false'}>
      <h2 id="plan-heading">Plan ${waiting && html`<span class="muted plan-updating">updating…</span>`}</h2>
      <div aria-live="polite">${body}</div>
    </section>`;
}
