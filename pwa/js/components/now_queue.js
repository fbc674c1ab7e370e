// The queue on the Now screen: every experiment still to run, in the order the daemon serves them, with its
// progress, buttons to move it (to the top, up, down: touch and keyboard, no dragging needed) and to cancel it
// after a confirmation.
import { html, useCallback, useState } from '../lib.js';
import { useAction, useRpc, useToasts } from '../store.js';
import { ErrorText } from './ui.js';
import { ConfirmDialog } from './now_dialog.js';
import { finishedShare } from '../run_rate.js';
import { moveChanges, sharesTurnWithPrevious } from '../queue_order.js';

function label(experiment) {
  return experiment.name || `Experiment ${experiment.id}`;
}

function QueueRow({ experiment, index, ordered, onCancel }) {
  const rpc = useRpc();
  const move = useCallback(async (where) => {
    for (const change of moveChanges(ordered, experiment.id, where)) {
      await rpc.call('experiments.set_priority', change);
    }
  }, [rpc, ordered, experiment.id]);
  const [act, state] = useAction(move);
  const { counts } = experiment;
  const share = finishedShare(counts);
  const name = label(experiment);
  const last = index === ordered.length - 1;
  return html`
    <li class="card queue-row" data-experiment-id=${experiment.id} data-status=${experiment.status}>
      <div class="queue-head">
        <a class="queue-name" href=${`/experiments/${experiment.id}`}>${name}</a>
        <span class=${`status status-${experiment.status}`}>${experiment.status}</span>
      </div>
      <progress max="1" value=${share} aria-label=${`Progress of ${name}`}>${Math.round(share * 100)}%</progress>
      <p class="muted queue-meta">
        ${counts.done} of ${counts.total} done · priority ${experiment.priority}
        ${sharesTurnWithPrevious(ordered, index) ? ' · takes turns with the one above' : ''}
      </p>
      <div class="row queue-actions">
        <button type="button" class="secondary" disabled=${index === 0 || state.busy} aria-label=${`Move ${name} to the top`} onClick=${() => act('top')}>Top</button>
        <button type="button" class="secondary" disabled=${index === 0 || state.busy} aria-label=${`Move ${name} up`} onClick=${() => act('up')}>Up</button>
        <button type="button" class="secondary" disabled=${last || state.busy} aria-label=${`Move ${name} down`} onClick=${() => act('down')}>Down</button>
        <button type="button" class="secondary danger-outline" aria-label=${`Cancel ${name}`} onClick=${() => onCancel(experiment)}>Cancel</button>
      </div>
      <${ErrorText} error=${state.error} />
    </li>`;
}

export function QueueList({ ordered }) {
  const rpc = useRpc();
  const toasts = useToasts();
  const [cancelling, setCancelling] = useState(null);
  const [cancel, cancelState] = useAction(useCallback(async (experiment) => {
    const result = await rpc.call('experiments.cancel', { experiment_id: experiment.id });
    setCancelling(null);
    if (toasts) toasts.show(`Cancelled ${label(experiment)}`);
    return result;
  }, [rpc, toasts]));
  if (ordered.length === 0) return html`<p class="muted">The queue is empty. <a href="/new">Build an experiment</a>.</p>`;
  return html`
    <ol class="queue-list">
      ${ordered.map((experiment, index) => html`
        <${QueueRow} key=${experiment.id} experiment=${experiment} index=${index} ordered=${ordered} onCancel=${setCancelling} />`)}
    </ol>
    <${ConfirmDialog}
      open=${cancelling !== null}
      title=${cancelling ? `Cancel ${label(cancelling)}?` : 'Cancel?'}
      confirmLabel="Cancel experiment"
      busy=${cancelState.busy}
      onConfirm=${() => cancel(cancelling)}
      onClose=${() => setCancelling(null)}>
      <p>Its queued cells are dropped and running ones stop. Images already made are kept.</p>
      <${ErrorText} error=${cancelState.error} />
    <//>`;
}
