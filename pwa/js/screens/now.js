// Now: what the daemon is doing — the running batch with its live preview on top, then the queue, which can be
// paused, reordered and cancelled from here. Everything refreshes from events and after a reconnect, so a reload or
// another device re-attaches to the same run.
import { html, useCallback, useEffect } from '../lib.js';
import { APP_EVENT_TYPES, useAction, useQuery, useRpc } from '../store.js';
import { ErrorText, Loading } from '../components/ui.js';
import { RunningBatch } from '../components/now_running.js';
import { QueueList } from '../components/now_queue.js';
import { queueOrder } from '../queue_order.js';

const QUEUE_EVENTS = ['job.started', 'job.done', 'job.failed', 'job.cancelled', 'job.requeued', 'experiment.created',
  'experiment.finished', 'experiment.cancelled', 'experiment.priority', 'experiment.retried', 'queue.paused', 'queue.resumed'];
// Enough to hold every experiment still queued: the list is newest first and only finished ones are older.
const EXPERIMENTS_PAGE = { limit: 200 };

// Previews cost the daemon work, so this connection asks for them only while the Now screen is shown.
function usePreviewSubscription() {
  const rpc = useRpc();
  useEffect(() => {
    if (!rpc) return undefined;
    rpc.subscribe([...APP_EVENT_TYPES, 'job.preview']).catch(() => {});
    return () => { rpc.subscribe(APP_EVENT_TYPES).catch(() => {}); };
  }, [rpc]);
}

function PauseButton({ queue, onChanged }) {
  const rpc = useRpc();
  const paused = queue.paused;
  const [act, state] = useAction(useCallback(async () => {
    await rpc.call(paused ? 'queue.resume' : 'queue.pause', {});
    onChanged();
  }, [rpc, paused, onChanged]));
  return html`
    <div class="now-pause">
      <button type="button" class=${paused ? '' : 'secondary'} disabled=${state.busy} onClick=${act}
        aria-pressed=${paused ? 'true' : 'false'}>${paused ? 'Resume the queue' : 'Pause the queue'}</button>
      ${paused && html`<p class="now-paused" role="status">Paused: ${queue.paused_reason || 'by request'}</p>`}
      <${ErrorText} error=${state.error} />
    </div>`;
}

// With nothing running, the newest image is the current result.
function LatestImage() {
  const latest = useQuery('images.list', { order: 'newest', limit: 1 }, { refreshOn: ['job.done'] });
  const image = latest.data && latest.data.images[0];
  if (!image) return null;
  return html`
    <figure class="now-latest">
      <a href=${`/experiments/${image.experiment_id}`}>
        <img src=${image.thumb_url || image.url} alt=${`The newest image: ${image.params.prompt}`} />
      </a>
      <figcaption class="muted">Newest image · ${image.params.sampler} · ${image.params.steps} steps · seed ${image.seed}</figcaption>
    </figure>`;
}

export function NowScreen() {
  usePreviewSubscription();
  const queue = useQuery('queue.list', { limit: 20 }, { refreshOn: QUEUE_EVENTS });
  const experiments = useQuery('experiments.list', EXPERIMENTS_PAGE, { refreshOn: QUEUE_EVENTS });
  const ordered = experiments.data ? queueOrder(experiments.data.experiments) : [];
  const running = queue.data ? queue.data.running : [];
  const runningExperiment = running.length
    ? ordered.find((experiment) => experiment.id === running[0].experiment_id) || null
    : null;
  return html`
    <section class="screen now" aria-labelledby="now-heading">
      <h1 id="now-heading">Now</h1>
      <div class="panes">
        <div class="now-main">
          ${queue.error && html`<${ErrorText} error=${queue.error} />`}
          ${!queue.data && !queue.error && html`<${Loading} label="Asking the daemon" />`}
          ${running.length > 0
            ? html`<${RunningBatch} key=${running[0].experiment_id} running=${running} experiment=${runningExperiment} />`
            : queue.data && html`<div class="card now-idle"><p>Nothing is running.${queue.data.paused ? '' : ' New experiments start at once.'}</p>
                <${LatestImage} /></div>`}
          ${queue.data && html`<${PauseButton} queue=${queue.data} onChanged=${queue.reload} />`}
        </div>
        <div class="now-queue">
          <h2 id="queue-heading">Queue</h2>
          ${experiments.error && html`<${ErrorText} error=${experiments.error} />`}
          ${experiments.data ? html`<${QueueList} ordered=${ordered} />` : !experiments.error && html`<${Loading} />`}
        </div>
      </div>
    </section>`;
}
