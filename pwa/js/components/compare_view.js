// Two images compared side by side, or stacked with a slider (a range input: arrow keys move it) that reveals
// the left image over the right one.
import { html, useState } from '../lib.js';
import { leftClip, sliderText, sliderValue, SLIDER_MAX, SLIDER_MIN } from '../compare_math.js';
import { Dialog } from './viewer_dialog.js';

function caption(image) {
  const p = image.params || {};
  return `#${image.id} · ${p.sampler || ''} · ${p.steps ?? ''} steps · CFG ${p.cfg_scale ?? ''} · seed ${image.seed ?? p.seed ?? ''}`;
}

export function CompareView({ left, right, onClose }) {
  const [mode, setMode] = useState('side');
  const [position, setPosition] = useState(50);
  const leftName = `image ${left.id}`;
  const rightName = `image ${right.id}`;
  return html`
    <${Dialog} label=${`Compare image ${left.id} and image ${right.id}`} onClose=${onClose} className="compare">
      <div class="row compare-modes" role="group" aria-label="Compare mode">
        <button type="button" class="secondary" aria-pressed=${mode === 'side' ? 'true' : 'false'} onClick=${() => setMode('side')}>Side by side</button>
        <button type="button" class="secondary" aria-pressed=${mode === 'slider' ? 'true' : 'false'} onClick=${() => setMode('slider')}>Slider</button>
      </div>
      ${mode === 'side' ? html`
        <div class="compare-side">
          <figure><img src=${left.url} alt=${leftName} /><figcaption>${caption(left)}</figcaption></figure>
          <figure><img src=${right.url} alt=${rightName} /><figcaption>${caption(right)}</figcaption></figure>
        </div>` : html`
        <div class="compare-slider">
          <div class="compare-stack">
            <img class="compare-under" src=${right.url} alt=${rightName} />
            <img class="compare-over" src=${left.url} alt=${leftName} style=${{ clipPath: leftClip(position) }} />
            <div class="compare-line" aria-hidden="true" style=${{ left: `${sliderValue(position)}%` }}></div>
          </div>
          <label for="compare-position">Compare position</label>
          <input id="compare-position" type="range" min=${SLIDER_MIN} max=${SLIDER_MAX} step="1" value=${position}
            aria-valuetext=${sliderText(position, leftName, rightName)}
            onInput=${(event) => setPosition(sliderValue(event.currentTarget.value))} />
          <p class="muted">Left: ${caption(left)}<br />Right: ${caption(right)}</p>
        </div>`}
    <//>`;
}
