// Prompt history (prompts.history): recent prompts, searchable; tapping one puts it (and its negative prompt) in
// the form. A daemon without the method shows nothing rather than an error.
import { html, useState } from '../lib.js';
import { useQuery } from '../store.js';
import { useDebounced } from '../debounce.js';

export function PromptHistory({ onUse }) {
  const [query, setQuery] = useState('');
  const asked = useDebounced(query.trim(), 300);
  const history = useQuery('prompts.history', asked ? { query: asked, limit: 12 } : { limit: 12 });
  if (history.error && history.error.code === 'method_not_found') return null;
  const prompts = history.data ? history.data.prompts : [];
  return html`
    <details class="prompt-history">
      <summary>Recent prompts</summary>
      <label for="prompt-history-search">Search prompts</label>
      <input id="prompt-history-search" type="search" autocomplete="off" value=${query} onInput=${(e) => setQuery(e.currentTarget.value)} />
      ${prompts.length === 0
        ? html`<p class="muted">${history.loading ? 'Looking…' : 'No prompts found.'}</p>`
        : html`<ul class="history-list">
            ${prompts.map((item) => html`
              <li key=${item.prompt + item.negative_prompt}>
                <button type="button" class="history-item secondary" onClick=${() => onUse(item)}>
                  <span class="history-prompt">${item.prompt}</span>
                  ${item.negative_prompt && html`<span class="muted history-negative">not: ${item.negative_prompt}</span>`}
                </button>
              </li>`)}
          </ul>`}
    </details>`;
}
