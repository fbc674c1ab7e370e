// Experiments: every experiment, newest first, with its status and progress; tap one to open it, or run it again
// with changes in the builder. Pages of 30 with "Show more"; refreshes from events and after a reconnect.
import { html, useState } from '../lib.js';
import { useQuery } from '../store.js';
import { ErrorText, Loading } from '../components/ui.js';
import { finishedShare } from '../run_rate.js';

const PAGE = 30;
const REFRESH_ON = ['experiment.created', 'experiment.finished', 'experiment.cancelled', 'experiment.priority',
  'experiment.retried', 'job.started', 'job.done', 'job.failed', 'job.cancelled'];

function when(text) {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function ExperimentRow({ experiment }) {
  const { counts } = experiment;
  const share = finishedShare(counts);
  const name = experiment.name || `Experiment ${experiment.id}`;
  return html`
    <li class="card experiment-row" data-experiment-id=${experiment.id} data-status=${experiment.status}>
      <div class="experiment-head">
        <a class="experiment-name" href=${`/experiments/${experiment.id}`}>${name}</a>
        <span class=${`status status-${experiment.status}`}>${experiment.status}</span>
      </div>
      <progress max="1" value=${share} aria-label=${`Progress of ${name}`}>${Math.round(share * 100)}%</progress>
      <p class="muted experiment-meta">
        ${`#${experiment.id} · ${experiment.kind} · ${counts.done} of ${counts.total} done`}${counts.failed ? ` · ${counts.failed} failed` : ''}${' · '}<time datetime=${experiment.created_at}>${when(experiment.created_at)}</time>
      </p>
      <div class="experiment-links">
        <a class="button secondary" href=${`/new?from=${experiment.id}`} aria-label=${`Run again with changes: ${name}`}>Run again with changes</a>
      </div>
    </li>`;
}

export function ExperimentsScreen() {
  const [limit, setLimit] = useState(PAGE);
  const list = useQuery('experiments.list', { limit }, { refreshOn: REFRESH_ON });
  const experiments = list.data ? list.data.experiments : [];
  return html`
    <section class="screen experiments" aria-labelledby="experiments-heading">
      <h1 id="experiments-heading">Experiments</h1>
      ${list.error && html`<${ErrorText} error=${list.error} />`}
      ${!list.data && !list.error && html`<${Loading} />`}
      ${list.data && experiments.length === 0 && html`<p class="muted">No experiments yet. <a href="/new">Build one</a>.</p>`}
      <ol class="experiment-list">
        ${experiments.map((experiment) => html`<${ExperimentRow} key=${experiment.id} experiment=${experiment} />`)}
      </ol>
      ${list.data && list.data.has_more && html`
        <button type="button" class="secondary more" disabled=${list.loading} onClick=${() => setLimit(limit + PAGE)}>Show more</button>`}
    </section>`;
}
