// One experiment: its comparison grid (X, Y and Z chosen from its axes, the others fixed), filling in live as
// cells finish; the image viewer with neighbours along each axis; comparing two images; the convergence
// analysis; exports; and "run again with changes".
import { html, useCallback, useMemo, useState, useEffect, useRoute } from '../lib.js';
import { useEvent, useQuery, useToasts } from '../store.js';
import { defaultChoice, experimentLayout, gridLayout, jobsByCoords, valueLabel } from '../grid_layout.js';
import { GridControls } from '../components/grid_controls.js';
import { GridView } from '../components/grid_view.js';
import { GridAnalysis } from '../components/grid_analysis.js';
import { GridExport } from '../components/grid_export.js';
import { ImageViewer } from '../components/viewer_image.js';
import { CompareView } from '../components/compare_view.js';
import { ErrorText, Loading } from '../components/ui.js';

const MAX_JOBS = 10000; // experiments.get's largest page
const LIVE_EVENTS = { 'job.started': 'running', 'job.done': 'done', 'job.failed': 'failed', 'job.cancelled': 'cancelled', 'job.requeued': 'queued' };
const RELOAD_ON = ['experiment.finished', 'experiment.cancelled', 'experiment.retried'];

// What events said about this experiment's jobs since the last fetch, so a thumbnail appears the moment its cell
// is done without fetching every job again.
function useLiveJobs(experimentId, jobs) {
  const [patches, setPatches] = useState({});
  useEffect(() => setPatches({}), [jobs]);
  const patch = (status) => (event) => {
    if (event.experiment_id !== experimentId) return;
    const ids = event.type === 'job.started' && Array.isArray(event.batch) ? event.batch : [event.job_id];
    setPatches((old) => {
      const next = { ...old };
      for (const id of ids) next[id] = { status, image_id: event.image_id ?? null, last_error: event.error ?? null };
      return next;
    });
  };
  for (const [type, status] of Object.entries(LIVE_EVENTS)) useEvent(type, patch(status)); // fixed list: same hooks every render
  return useMemo(() => (jobs || []).map((job) => {
    const live = patches[job.id];
    if (!live || job.image_id) return job;
    return { ...job, status: live.status, image_id: live.image_id || job.image_id, last_error: live.last_error || job.last_error };
  }), [jobs, patches]);
}

function Header({ experiment }) {
  const c = experiment.counts || {};
  return html`
    <header class="experiment-head">
      <h1>${experiment.name || `Experiment ${experiment.id}`}</h1>
      <p class="muted">
        <span class=${`status status-${experiment.status}`}>${experiment.status}</span>
        ${' · '}<span data-testid="experiment-progress">${c.done ?? 0} of ${c.total ?? 0} done</span>
        ${c.failed ? ` · ${c.failed} failed` : ''}${c.queued ? ` · ${c.queued} queued` : ''} · ${experiment.kind}
      </p>
      <a class="button secondary" href=${`/new?from=${experiment.id}`}>Run again with changes</a>
    </header>`;
}

function viewerNav(layout, jobs, coords, choice, openAt) {
  const byCoords = jobsByCoords(layout, jobs);
  const order = [choice.x, choice.y, choice.z, ...layout.axes.map((_, i) => i)]
    .filter((i, pos, all) => i !== null && all.indexOf(i) === pos && layout.axes[i].values.length > 1);
  return order.map((axis) => {
    const at = (step) => {
      const next = [...coords];
      next[axis] += step;
      const job = byCoords.get(next.join(','));
      return job && job.image_id ? () => openAt(next) : null;
    };
    const a = layout.axes[axis];
    return { name: a.name, value: valueLabel(a, a.values[coords[axis]]), previous: at(-1), next: at(1) };
  });
}

export function ExperimentScreen() {
  const { params } = useRoute();
  const experimentId = Number(params.id);
  const query = useQuery('experiments.get', { experiment_id: experimentId, jobs_limit: MAX_JOBS }, { refreshOn: RELOAD_ON });
  const experiment = query.data ? query.data.experiment : null;
  const jobs = useLiveJobs(experimentId, query.data ? query.data.jobs : null);
  const layout = useMemo(() => (experiment ? experimentLayout(experiment.spec, query.data.jobs) : null), [query.data]);
  const [choice, setChoice] = useState(null);
  useEffect(() => {
    if (layout && (choice === null || choice.x >= layout.axes.length)) setChoice(defaultChoice(layout.axes));
  }, [layout]);
  const grid = useMemo(() => (layout && choice ? gridLayout(layout, jobs, choice) : null), [layout, jobs, choice]);
  const [open, setOpen] = useState(null); // coords of the image in the viewer
  const [picked, setPicked] = useState(null);
  const [comparing, setComparing] = useState(null);
  const toasts = useToasts();
  const openAt = useCallback((coords) => setOpen(coords), []);
  const compare = useCallback((image) => {
    if (!picked || picked.id === image.id) {
      setPicked(image);
      toasts.show(`Image ${image.id} picked: open another image and press Compare`);
      return;
    }
    setOpen(null);
    setComparing([picked, image]);
  }, [picked, toasts]);

  if (query.error && !experiment) return html`<section class="screen"><h1>Experiment ${params.id}</h1><${ErrorText} error=${query.error} /></section>`;
  if (!experiment || !layout || !choice || !grid) return html`<section class="screen"><${Loading} label="Loading the experiment" /></section>`;
  const openJob = open ? jobsByCoords(layout, jobs).get(open.join(',')) : null;
  return html`
    <section class="screen experiment-screen">
      <${Header} experiment=${experiment} />
      ${jobs.length < experiment.counts.total && html`<p class="muted">Showing the first ${jobs.length} of ${experiment.counts.total} cells.</p>`}
      ${picked && html`
        <div class="row compare-bar" role="status">
          <span>Image ${picked.id} picked to compare.</span>
          <button type="button" class="secondary" onClick=${() => setPicked(null)}>Clear</button>
        </div>`}
      <div class="panes">
        <div class="experiment-grid">
          <${GridView} axes=${layout.axes} choice=${choice} grid=${grid} onOpen=${(cell) => setOpen(cell.coords)} />
        </div>
        <div class="stack">
          <${GridControls} axes=${layout.axes} choice=${choice} onChoice=${setChoice} />
          <${GridAnalysis} experiment=${experiment} />
          <${GridExport} experiment=${experiment} />
        </div>
      </div>
      ${openJob && openJob.image_id && html`
        <${ImageViewer} imageId=${openJob.image_id} nav=${viewerNav(layout, jobs, open, choice, openAt)}
          onClose=${() => setOpen(null)} onCompare=${compare} />`}
      ${comparing && html`<${CompareView} left=${comparing[0]} right=${comparing[1]} onClose=${() => setComparing(null)} />`}
    </section>`;
}
