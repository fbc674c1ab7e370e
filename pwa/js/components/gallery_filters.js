// The gallery's filters: experiment, model and sampler (lists from the daemon), a tag and words (matched in the
// images' annotations, images.search's rule). Lists apply at once; typed fields apply on "Filter".
import { html, useState } from '../lib.js';
import { useQuery } from '../store.js';

export const NO_FILTERS = { experiment_id: '', model: '', sampler: '', tag: '', text: '', favorite: false };

// The filters as images.list params: empty ones left out.
export function filterParams(filters) {
  const params = {};
  if (filters.experiment_id) params.experiment_id = Number(filters.experiment_id);
  for (const name of ['model', 'sampler', 'tag']) if (filters[name].trim()) params[name] = filters[name].trim();
  if (filters.text.trim()) params.text = filters.text.trim();
  if (filters.favorite) params.favorite = true;
  return params;
}

function Choice({ id, label, value, options, onChange }) {
  return html`
    <div class="gallery-filter">
      <label for=${id}>${label}</label>
      <select id=${id} value=${value} onChange=${(event) => onChange(event.currentTarget.value)}>
        <option value="">any</option>
        ${options.map(([v, text]) => html`<option value=${String(v)} key=${String(v)}>${text}</option>`)}
      </select>
    </div>`;
}

// How many filters are set: what the phone's "Filters" button shows while the form is folded away.
export function activeFilters(filters) {
  return Object.keys(filterParams(filters)).length;
}

export function GalleryFilters({ filters, onApply, expanded }) {
  const experiments = useQuery('experiments.list', { limit: 100 }, { refreshOn: ['experiment.created'] });
  const models = useQuery('models.list', {});
  const samplers = useQuery('samplers.list', {});
  const [typed, setTyped] = useState({ tag: filters.tag, text: filters.text });
  const pick = (name) => (value) => onApply({ ...filters, ...typed, [name]: value });
  const experimentOptions = ((experiments.data && experiments.data.experiments) || []).map((e) => [e.id, `${e.name || 'experiment'} (#${e.id})`]);
  const modelOptions = ((models.data && models.data.models) || []).map((m) => [m.name, m.name]);
  const samplerOptions = ((samplers.data && samplers.data.samplers) || []).map((s) => [s.name, s.name]);
  return html`
    <form id="gallery-filters" class=${`card gallery-filters${expanded ? '' : ' folded'}`} role="search" aria-label="Filter images"
      onSubmit=${(event) => { event.preventDefault(); onApply({ ...filters, ...typed }); }}>
      <div class="gallery-filter-grid">
        <${Choice} id="filter-experiment" label="Experiment" value=${filters.experiment_id} options=${experimentOptions} onChange=${pick('experiment_id')} />
        <${Choice} id="filter-model" label="Model" value=${filters.model} options=${modelOptions} onChange=${pick('model')} />
        <${Choice} id="filter-sampler" label="Sampler" value=${filters.sampler} options=${samplerOptions} onChange=${pick('sampler')} />
        <div class="gallery-filter">
          <label for="filter-tag">Tag</label>
          <input id="filter-tag" type="text" value=${typed.tag} autocomplete="off"
            onInput=${(event) => setTyped({ ...typed, tag: event.currentTarget.value })} />
        </div>
        <div class="gallery-filter gallery-filter-words">
          <label for="filter-text">Words</label>
          <input id="filter-text" type="search" value=${typed.text} autocomplete="off"
            onInput=${(event) => setTyped({ ...typed, text: event.currentTarget.value })} />
        </div>
      </div>
      <div class="row">
        <label class="check"><input type="checkbox" checked=${filters.favorite}
          onChange=${(event) => onApply({ ...filters, ...typed, favorite: event.currentTarget.checked })} /> Favourites only</label>
        <button type="submit">Filter</button>
        <button type="button" class="secondary" onClick=${() => { setTyped({ tag: '', text: '' }); onApply(NO_FILTERS); }}>Clear</button>
      </div>
    </form>`;
}
