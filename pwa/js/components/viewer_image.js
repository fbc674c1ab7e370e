// The image viewer: the full image (only here, never in a grid), every parameter, the A1111 infotext to copy,
// favourite and rating, export to ComfyUI, and the neighbouring images along each axis (buttons, and a sideways
// swipe on the image for the first axis).
import { html, useCallback, useEffect, useRef, useState } from '../lib.js';
import { useEvent, useQuery, useRpc, useAction } from '../store.js';
import { downloadBytes } from '../download.js';
import { Dialog } from './viewer_dialog.js';
import { FavoriteButton, RatingControl } from './viewer_marks.js';
import { Infotext, ParameterList, useFullImage } from './viewer_infotext.js';
import { ErrorText, Loading } from './ui.js';

const SWIPE_PX = 40;

// A sideways swipe (touch, pen or mouse drag) on the image: left shows the next value, right the previous.
function useSwipe(onPrevious, onNext) {
  const start = useRef(null);
  return {
    onPointerDown: (event) => { start.current = { x: event.clientX, y: event.clientY }; },
    onPointerCancel: () => { start.current = null; },
    onPointerUp: (event) => {
      if (!start.current) return;
      const dx = event.clientX - start.current.x;
      const dy = event.clientY - start.current.y;
      start.current = null;
      if (Math.abs(dx) < SWIPE_PX || Math.abs(dx) < Math.abs(dy)) return;
      if (dx < 0 && onNext) onNext();
      if (dx > 0 && onPrevious) onPrevious();
    },
  };
}

// `nav`: [{name, value, previous, next}] with previous/next functions or null at an end.
export function ImageViewer({ imageId, nav = [], onClose, onCompare, onChanged }) {
  const rpc = useRpc();
  const query = useQuery('images.get', { image_id: imageId });
  const [image, setImage] = useState(null);
  useEffect(() => setImage(query.data ? query.data.image : null), [query.data]);
  useEvent('image.updated', (event) => {
    if (event.image_id === imageId) query.reload();
  });
  const changed = useCallback((updated) => {
    setImage(updated);
    if (onChanged) onChanged(updated);
  }, [onChanged]);
  const full = useFullImage(imageId);
  const first = nav[0] || {};
  const swipe = useSwipe(first.previous, first.next);
  const [exportComfy, exportState] = useAction(useCallback(async () => {
    const reply = await rpc.call('exports.run', { format: 'comfyui', image_id: imageId });
    for (const file of reply.files) downloadBytes(file.filename, file.content, file.media_type);
  }, [rpc, imageId]));
  const params = image ? image.params || {} : {};
  const alt = image ? `Image ${image.id}: ${params.prompt || ''}` : `Image ${imageId}`;
  return html`
    <${Dialog} label=${`Image ${imageId}`} onClose=${onClose} className="viewer">
      <div class="viewer-body">
        <div class="viewer-picture" ...${swipe}>
          ${full.url ? html`<img src=${full.url} alt=${alt} draggable="false" />` : html`<${Loading} label="Loading the image" />`}
          <${ErrorText} error=${full.error} />
        </div>
        ${nav.length > 0 && html`
          <div class="viewer-nav">
            ${nav.map((step) => html`
              <div class="row viewer-step" key=${step.name}>
                <button type="button" class="secondary" disabled=${!step.previous} onClick=${step.previous}
                  aria-label=${`Previous ${step.name}`}>‹</button>
                <span class="viewer-step-value">${step.name}: ${step.value}</span>
                <button type="button" class="secondary" disabled=${!step.next} onClick=${step.next}
                  aria-label=${`Next ${step.name}`}>›</button>
              </div>`)}
          </div>`}
        ${query.error && html`<${ErrorText} error=${query.error} />`}
        ${image && html`
          <div class="row viewer-actions">
            <${FavoriteButton} image=${image} onChanged=${changed} />
            <${RatingControl} image=${image} onChanged=${changed} />
          </div>
          <div class="row viewer-actions">
            ${onCompare && html`<button type="button" class="secondary" onClick=${() => onCompare(image)}>Compare</button>`}
            <a class="button secondary" href=${`/images/${image.id}.png`} download=${`image-${image.id}.png`}>Download PNG</a>
            <button type="button" class="secondary" disabled=${exportState.busy} onClick=${exportComfy}>ComfyUI workflow</button>
          </div>
          <${ErrorText} error=${exportState.error} />
          <${Infotext} text=${full.texts ? full.texts.parameters || '' : null} error=${full.error} />
          <h3>Parameters</h3>
          <${ParameterList} image=${image} />`}
      </div>
    <//>`;
}
