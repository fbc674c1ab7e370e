// Every image, newest first, a page at a time (images.list paged by after_id, so 100,000 images cost one page):
// thumbnails only, lazily loaded; more pages as the end scrolls into view or on "Load more". Filters, favourite,
// rating (in the viewer) and delete with undo.
import { html, useCallback, useEffect, useRef, useState, useRoute } from '../lib.js';
import { useConnectionState, useEvent, useRpc, useToasts } from '../store.js';
import { appendPage, insertNewestFirst, newerThan, replaceItem, withoutIds } from '../gallery_pages.js';
import { GalleryFilters, NO_FILTERS, activeFilters, filterParams } from '../components/gallery_filters.js';
import { GalleryTile } from '../components/gallery_tile.js';
import { ImageViewer } from '../components/viewer_image.js';
import { ErrorText, Loading } from '../components/ui.js';

const DEFAULT_PAGE = 48;
const MAX_PAGE = 200;
const MAX_RESTORED_LOOKUPS = 50;

function pageSize(query) {
  const asked = Number(query && query.limit);
  return Number.isInteger(asked) && asked >= 1 ? Math.min(asked, MAX_PAGE) : DEFAULT_PAGE;
}

// The loaded pages and how to get the next: a fresh start whenever the filters change or the connection comes back.
function useGalleryPages(filters, limit) {
  const rpc = useRpc();
  const connection = useConnectionState();
  const [list, setList] = useState({ items: [], next: null, done: false, loading: false, error: null });
  const generation = useRef(0);
  const busy = useRef(false);
  const base = { order: 'newest', limit, ...filterParams(filters) };
  const key = JSON.stringify(base);
  const fetchPage = useCallback(async (after, fresh) => {
    if (!rpc || rpc.state !== 'open' || (busy.current && !fresh)) return;
    const mine = fresh ? ++generation.current : generation.current;
    busy.current = true;
    setList((old) => ({ ...old, loading: true, error: null }));
    try {
      const params = JSON.parse(key);
      if (after !== null) params.after_id = after;
      const reply = await rpc.call('images.list', params);
      if (mine !== generation.current) return;
      setList((old) => ({
        items: fresh ? reply.images : appendPage(old.items, reply.images),
        next: reply.next_after_id ?? null,
        done: !reply.has_more,
        loading: false,
        error: null,
      }));
    } catch (error) {
      if (mine === generation.current) setList((old) => ({ ...old, loading: false, error }));
    } finally {
      if (mine === generation.current) busy.current = false;
    }
  }, [rpc, key]);
  useEffect(() => { if (connection === 'open') fetchPage(null, true); }, [fetchPage, connection]);
  const more = useCallback(() => {
    if (!list.done && list.next !== null && !list.loading) fetchPage(list.next, false);
  }, [fetchPage, list.done, list.next, list.loading]);
  // Images that arrived while the gallery was open: the first page again, the new ones put on top.
  const refreshTop = useCallback(async () => {
    if (!rpc || rpc.state !== 'open') return;
    const reply = await rpc.call('images.list', JSON.parse(key));
    setList((old) => ({ ...old, items: [...newerThan(old.items, reply.images), ...old.items] }));
  }, [rpc, key]);
  return { list, setList, more, refreshTop };
}

// "Load more" stays for keyboards and for browsers without IntersectionObserver; the observer loads the next page
// when the end of the list comes near.
function useNearEnd(onNear, shown) {
  const sentinel = useRef(null);
  const latest = useRef(onNear);
  latest.current = onNear;
  useEffect(() => {
    if (!sentinel.current || typeof IntersectionObserver === 'undefined') return undefined;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) latest.current();
    }, { rootMargin: '600px 0px' });
    // Observed again after each page: a page that did not fill the screen leaves the end in view, and an
    // observer reports only changes.
    observer.observe(sentinel.current);
    return () => observer.disconnect();
  }, [shown]);
  return sentinel;
}

export function GalleryScreen() {
  const rpc = useRpc();
  const toasts = useToasts();
  const { query } = useRoute();
  const [filters, setFilters] = useState(NO_FILTERS);
  const { list, setList, more, refreshTop } = useGalleryPages(filters, pageSize(query));
  const sentinel = useNearEnd(more, list.loading ? -1 : list.items.length);
  const [openId, setOpenId] = useState(null);
  const [error, setError] = useState(null);
  const [showFilters, setShowFilters] = useState(false); // a phone folds the filters away: the images come first

  const changed = useCallback((image) => setList((old) => ({ ...old, items: replaceItem(old.items, image) })), [setList]);
  const timer = useRef(null);
  useEvent('job.done', () => {
    if (timer.current === null) timer.current = setTimeout(() => { timer.current = null; refreshTop(); }, 500);
  });
  useEffect(() => () => clearTimeout(timer.current), []);
  useEvent('image.updated', (event) => changed({ id: event.image_id, favorite: event.favorite, rating: event.rating }));
  useEvent('image.deleted', (event) => setList((old) => ({ ...old, items: withoutIds(old.items, event.image_ids || []) })));
  useEvent('image.restored', async (event) => {
    const ids = (event.image_ids || []).slice(0, MAX_RESTORED_LOOKUPS);
    const found = [];
    for (const id of ids) {
      try { found.push((await rpc.call('images.get', { image_id: id })).image); } catch (e) { /* gone again */ }
    }
    setList((old) => ({ ...old, items: insertNewestFirst(old.items, found, { complete: old.done }) }));
  });

  const restore = useCallback(async (image) => {
    try {
      const reply = await rpc.call('images.restore', { image_ids: [image.id] });
      setList((old) => ({ ...old, items: insertNewestFirst(old.items, reply.images, { complete: true }) }));
      toasts.show(`Image ${image.id} restored`);
    } catch (failure) {
      toasts.show(`Image ${image.id} was not restored: ${failure.message}`, { kind: 'error' });
    }
  }, [rpc, toasts, setList]);
  const remove = useCallback(async (image) => {
    setError(null);
    try {
      await rpc.call('images.delete', { image_ids: [image.id] });
    } catch (failure) {
      setError(failure);
      return;
    }
    setList((old) => ({ ...old, items: withoutIds(old.items, [image.id]) }));
    if (openId === image.id) setOpenId(null);
    toasts.show(`Image ${image.id} moved to the trash`, { action: { label: 'Undo', run: () => restore(image) }, timeoutMs: 10000 });
  }, [rpc, toasts, restore, openId, setList]);

  const index = list.items.findIndex((item) => item.id === openId);
  const nav = index < 0 ? [] : [{
    name: 'image',
    value: `${index + 1} of ${list.items.length}${list.done ? '' : '+'}`,
    previous: index > 0 ? () => setOpenId(list.items[index - 1].id) : null,
    next: index + 1 < list.items.length ? () => setOpenId(list.items[index + 1].id) : null,
  }];
  return html`
    <section class="screen gallery-screen">
      <div class="gallery-head">
        <h1>Gallery</h1>
        <button type="button" class="secondary gallery-filter-toggle" aria-expanded=${showFilters ? 'true' : 'false'}
          aria-controls="gallery-filters" onClick=${() => setShowFilters(!showFilters)}>
          Filters${activeFilters(filters) ? ` (${activeFilters(filters)})` : ''}</button>
      </div>
      <${ErrorText} error=${error} />
      <div class="gallery-layout">
        <${GalleryFilters} filters=${filters} onApply=${setFilters} expanded=${showFilters} />
        <div>
          ${list.items.length === 0 && !list.loading && !list.error && html`<p class="muted">No images${filters === NO_FILTERS ? ' yet' : ' match these filters'}.</p>`}
          <ul class="gallery-grid" aria-label="Images, newest first">
            ${list.items.map((image) => html`
              <${GalleryTile} key=${image.id} image=${image} onOpen=${(it) => setOpenId(it.id)} onChanged=${changed} onDelete=${remove} />`)}
          </ul>
          <${ErrorText} error=${list.error} />
          ${list.loading && html`<${Loading} label="Loading images" />`}
          <div ref=${sentinel} class="gallery-end" aria-hidden="true"></div>
          ${!list.done && list.next !== null && html`
            <button type="button" class="secondary gallery-more" disabled=${list.loading} onClick=${more}>Load more</button>`}
        </div>
      </div>
      ${openId !== null && html`
        <${ImageViewer} imageId=${openId} nav=${nav} onClose=${() => setOpenId(null)} onChanged=${changed} />`}
    </section>`;
}
