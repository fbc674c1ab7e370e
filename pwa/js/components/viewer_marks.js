// Favourite and a 1-5 rating of one image, shared by the image viewer and the gallery. The daemon's reply (the
// image as it now is) is what is shown; an error stays next to the control.
import { html, useCallback } from '../lib.js';
import { useAction, useRpc } from '../store.js';
import { ErrorText } from './ui.js';

export function FavoriteButton({ image, onChanged, compact = false }) {
  const rpc = useRpc();
  const [toggle, state] = useAction(useCallback(async () => {
    const reply = await rpc.call('images.favorite', { image_id: image.id, favorite: !image.favorite });
    onChanged(reply.image);
  }, [rpc, image.id, image.favorite, onChanged]));
  const label = image.favorite ? 'Favourite' : 'Add to favourites';
  return html`
    <span class="mark">
      <button type="button" class=${`secondary favorite${image.favorite ? ' on' : ''}`} aria-pressed=${image.favorite ? 'true' : 'false'}
        aria-label=${compact ? `Favourite image ${image.id}` : undefined} disabled=${state.busy} onClick=${toggle}>
        <span aria-hidden="true">${image.favorite ? '★' : '☆'}</span>${compact ? '' : html`<span>${label}</span>`}
      </button>
      <${ErrorText} error=${state.error} />
    </span>`;
}

export function RatingControl({ image, onChanged }) {
  const rpc = useRpc();
  const [rate, state] = useAction(useCallback(async (rating) => {
    const reply = await rpc.call('images.rate', { image_id: image.id, rating });
    onChanged(reply.image);
  }, [rpc, image.id, onChanged]));
  const current = image.rating || null;
  return html`
    <div class="mark">
      <div class="rating" role="group" aria-label=${`Rating: ${current ? `${current} of 5` : 'none'}`}>
        ${[1, 2, 3, 4, 5].map((n) => html`
          <button type="button" class=${`ghost star${current !== null && n <= current ? ' on' : ''}`} key=${n}
            aria-pressed=${current === n ? 'true' : 'false'} aria-label=${`Rate ${n} of 5`} disabled=${state.busy}
            onClick=${() => rate(current === n ? null : n)}>
            <span aria-hidden="true">${current !== null && n <= current ? '★' : '☆'}</span>
          </button>`)}
      </div>
      <${ErrorText} error=${state.error} />
    </div>`;
}
