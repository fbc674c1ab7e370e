// The running batch on the Now screen: the live step preview, the step counter, and the experiment's progress,
// images per second and time left. The preview and the step come from events (job.preview, job.progress); the
// rest from queries that refresh on events and after a reconnect.
import { html, useEffect, useRef, useState } from '../lib.js';
import { useEvent, useQuery } from '../store.js';
import { formatDuration } from './ui.js';
import { etaSeconds, finishedShare, formatRate, imagesPerSecond } from '../run_rate.js';

// The newest preview frame as an object URL; the one it replaces is revoked so frames do not pile up in memory.
function usePreviewFrame(experimentId) {
  const [frame, setFrame] = useState(null);
  const current = useRef(null);
  const show = (next) => {
    if (current.current) URL.revokeObjectURL(current.current.url);
    current.current = next;
    setFrame(next);
  };
  useEvent('job.preview', (event) => {
    if (!(event.image instanceof Uint8Array)) return;
    const url = URL.createObjectURL(new Blob([event.image], { type: event.mime || 'image/webp' }));
    show({ url, step: event.step, total: event.total, jobId: event.job_id, experimentId: event.experiment_id, width: event.width, height: event.height });
  });
  useEffect(() => () => show(null), []);
  // A frame of another experiment (the queue moved on) is not this batch's.
  return frame && frame.experimentId === experimentId ? frame : null;
}

// The newest step of the running batch: job.progress carries it; a new batch starts again from zero.
function useStep(jobIds) {
  const [step, setStep] = useState(null);
  const key = jobIds.join(',');
  useEffect(() => setStep(null), [key]);
  useEvent('job.progress', (event) => {
    if (jobIds.includes(event.job_id)) setStep({ step: event.step, total: event.total });
  });
  useEvent('rpc.resync', () => setStep(null));
  return step;
}

function describeBatch(jobs) {
  const params = jobs[0].params || {};
  const parts = [jobs.length === 1 ? '1 image' : `batch of ${jobs.length} images`];
  if (params.sampler) parts.push(params.schedule && params.schedule !== 'Automatic' ? `${params.sampler} ${params.schedule}` : params.sampler);
  if (params.width) parts.push(`${params.width}×${params.height}`);
  if (params.model) parts.push(params.model);
  return parts.join(' · ');
}

export function RunningBatch({ running, experiment }) {
  const experimentId = running[0].experiment_id;
  const jobIds = running.map((job) => job.id);
  const step = useStep(jobIds);
  const frame = usePreviewFrame(experimentId);
  const recent = useQuery('images.list', { experiment_id: experimentId, order: 'newest', limit: 20 }, { refreshOn: ['job.done'] });
  const rate = recent.data ? imagesPerSecond(recent.data.images.map((image) => image.created_at)) : null;
  const counts = experiment ? experiment.counts : null;
  const share = finishedShare(counts);
  const total = running[0].params ? running[0].params.steps : null;
  const shown = step || (frame ? { step: frame.step, total: frame.total } : null);
  return html`
    <article class="card now-running" aria-labelledby="now-running-title">
      <h2 id="now-running-title" class="now-title">
        <a href=${`/experiments/${experimentId}`}>${experiment ? experiment.name || `Experiment ${experimentId}` : `Experiment ${experimentId}`}</a>
      </h2>
      <div class="now-preview" data-has-frame=${frame ? 'yes' : 'no'}>
        ${frame
          ? html`<img src=${frame.url} alt=${`Live preview of step ${frame.step} of ${frame.total}`} width=${frame.width} height=${frame.height} />`
          : html`<p class="muted">The preview appears after the first steps.</p>`}
      </div>
      <p class="now-step" aria-live="off">
        <span class="now-step-label">Step</span>
        <output class="now-step-count" data-step=${shown ? shown.step : ''}>${shown ? `${shown.step} / ${shown.total}` : `— / ${total ?? '—'}`}</output>
        <span class="muted">${describeBatch(running)}</span>
      </p>
      ${counts && html`
        <div class="now-progress">
          <progress max="1" value=${share} aria-label="Experiment progress">${Math.round(share * 100)}%</progress>
          <p class="row now-figures">
            <span><strong>${counts.done}</strong> of ${counts.total} done${counts.failed ? html`, <span class="error-inline">${counts.failed} failed</span>` : ''}</span>
            <span>${formatRate(rate)}</span>
            <span>${rate ? `about ${formatDuration(etaSeconds(counts, rate))} left` : 'time left: —'}</span>
          </p>
        </div>`}
    </article>`;
}
