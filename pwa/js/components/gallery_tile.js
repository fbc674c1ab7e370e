// One image in the gallery: its thumbnail (lazy), a caption, favourite and delete. Opening it shows the viewer,
// where the rating is.
import { html } from '../lib.js';
import { FavoriteButton } from './viewer_marks.js';

export function GalleryTile({ image, onOpen, onChanged, onDelete }) {
  const c = image.caption || {};
  return html`
    <li class="gallery-tile" data-image-id=${image.id}>
      <button type="button" class="gallery-thumb" aria-label=${`Open image ${image.id}`} onClick=${() => onOpen(image)}>
        <img src=${image.thumb_url || `/thumbs/256/${image.id}.webp`} alt="" loading="lazy" decoding="async" width="256" height="256" />
      </button>
      <p class="gallery-caption">
        <span>#${image.id} · ${c.sampler || ''} · ${c.steps ?? ''} steps</span>
        ${image.rating ? html`<span class="gallery-rating" aria-label=${`rated ${image.rating} of 5`}>${'★'.repeat(image.rating)}</span>` : ''}
      </p>
      <div class="row gallery-tile-actions">
        <${FavoriteButton} image=${image} onChanged=${onChanged} compact />
        <button type="button" class="ghost gallery-delete" aria-label=${`Delete image ${image.id}`} onClick=${() => onDelete(image)}>
          Delete</button>
      </div>
    </li>`;
}
