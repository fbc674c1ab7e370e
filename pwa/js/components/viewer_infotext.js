// The full image with every parameter and A1111's infotext, read from the PNG's own `parameters` chunk.
import { html, useEffect, useRef, useState } from '../lib.js';
import { pngTextChunks } from '../png_text.js';
import { ErrorText } from './ui.js';

// The full PNG as an object URL and its text chunks: downloaded once, shown and read from the same bytes.
export function useFullImage(imageId) {
  const [state, setState] = useState({ url: null, texts: null, error: null });
  useEffect(() => {
    if (!imageId) return undefined;
    let url = null;
    let alive = true;
    setState({ url: null, texts: null, error: null });
    (async () => {
      try {
        const response = await fetch(`/images/${imageId}.png`, { credentials: 'same-origin' });
        if (!response.ok) throw new Error(`the daemon answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
        const bytes = new Uint8Array(await response.arrayBuffer());
        url = URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
        if (alive) setState({ url, texts: pngTextChunks(bytes) || {}, error: null });
      } catch (error) {
        if (alive) setState({ url: null, texts: null, error });
      }
    })();
    return () => { alive = false; if (url) URL.revokeObjectURL(url); };
  }, [imageId]);
  return state;
}

// Copy with the Clipboard API where the browser allows it (a secure context, permission); otherwise select the
// text and use the older copy command, and failing that leave it selected for the user to copy.
export async function copyText(text, element) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return 'Copied';
    } catch (error) { /* fall back below */ }
  }
  if (element) {
    element.focus();
    element.select();
    try {
      if (document.execCommand('copy')) return 'Copied';
    } catch (error) { /* leave it selected */ }
  }
  return 'Selected: press Ctrl+C (or long-press, Copy) to copy';
}

const PARAM_ORDER = ['prompt', 'negative_prompt', 'model', 'sampler', 'schedule', 'steps', 'cfg_scale', 'seed',
  'width', 'height', 'clip_skip', 'eta'];

function shown(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function ParameterList({ image }) {
  const params = image.params || {};
  const names = [...PARAM_ORDER.filter((n) => n in params), ...Object.keys(params).filter((n) => !PARAM_ORDER.includes(n))];
  const metadata = image.metadata || {};
  const extra = [
    ['seed used', image.seed],
    ['time', typeof image.wall_time_s === 'number' ? `${image.wall_time_s.toFixed(2)} s` : null],
    ['created', image.created_at],
    ['sha256', image.sha256],
    ...Object.keys(metadata).sort().map((key) => [key, metadata[key]]),
  ];
  return html`
    <dl class="params">
      ${names.map((name) => html`<div key=${name}><dt>${name}</dt><dd>${shown(params[name])}</dd></div>`)}
      ${extra.filter(([, v]) => v !== null && v !== undefined).map(([name, value]) =>
        html`<div key=${`m-${name}`}><dt>${name}</dt><dd>${shown(value)}</dd></div>`)}
    </dl>`;
}

export function Infotext({ text, error }) {
  const area = useRef(null);
  const [status, setStatus] = useState('');
  if (error) return html`<${ErrorText} error=${error} />`;
  if (text === null || text === undefined) return html`<p class="muted">Reading the infotext…</p>`;
  return html`
    <div class="infotext">
      <label for="infotext-text">A1111 infotext</label>
      <textarea id="infotext-text" ref=${area} readonly rows="5" value=${text}></textarea>
      <div class="row">
        <button type="button" class="secondary" onClick=${async () => setStatus(await copyText(text, area.current))}>
          Copy infotext</button>
        <span class="muted" role="status">${status}</span>
      </div>
    </div>`;
}
