// Export an experiment as downloads: CSV or JSON (experiments.export, joined from its parts) and ComfyUI
// workflows (exports.run, one file per image, fetched page by page).
import { html, useCallback } from '../lib.js';
import { useAction, useRpc } from '../store.js';
import { downloadBytes, downloadText } from '../download.js';
import { ErrorText } from './ui.js';

const MAX_COMFY_PAGES = 50; // a bound on the loop; the daemon pages by about 8 MiB

export function GridExport({ experiment }) {
  const rpc = useRpc();
  const [table, tableState] = useAction(useCallback(async (format) => {
    const first = await rpc.call('experiments.export', { experiment_id: experiment.id, format });
    const parts = [first.content];
    for (let part = 1; part < first.parts; part += 1) {
      parts.push((await rpc.call('experiments.export', { experiment_id: experiment.id, format, part })).content);
    }
    const type = format === 'csv' ? 'text/csv' : 'application/json';
    downloadText(`experiment-${experiment.id}.${format}`, parts.join(''), type);
  }, [rpc, experiment.id]));
  const [comfy, comfyState] = useAction(useCallback(async () => {
    let after = null;
    let files = 0;
    const skipped = [];
    for (let page = 0; page < MAX_COMFY_PAGES; page += 1) {
      const params = { format: 'comfyui', experiment_id: experiment.id };
      if (after !== null) params.after_image_id = after;
      const reply = await rpc.call('exports.run', params);
      for (const file of reply.files) downloadBytes(file.filename, file.content, file.media_type);
      files += reply.files.length;
      skipped.push(...reply.skipped);
      after = reply.next_after_image_id;
      if (after === null || after === undefined) break;
    }
    return { files, skipped };
  }, [rpc, experiment.id]));
  const busy = tableState.busy || comfyState.busy;
  return html`
    <section class="card" aria-labelledby="export-title">
      <h2 id="export-title">Export</h2>
      <div class="row">
        <button type="button" class="secondary" disabled=${busy} onClick=${() => table('csv')}>CSV</button>
        <button type="button" class="secondary" disabled=${busy} onClick=${() => table('json')}>JSON</button>
        <button type="button" class="secondary" disabled=${busy} onClick=${comfy}>ComfyUI workflows</button>
      </div>
      <${ErrorText} error=${tableState.error || comfyState.error} />
    </section>`;
}
