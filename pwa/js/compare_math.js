// The compare slider: a range input from 0 to 100 over two stacked images; the top (left) image shows from the
// left edge up to the slider's position, clipped with `clip-path: inset(...)`.

export const SLIDER_MIN = 0;
export const SLIDER_MAX = 100;

// The slider's value clamped to 0..100 (a number; anything else is the middle).
export function sliderValue(raw) {
  const value = Number(raw);
  if (!Number.isFinite(value)) return 50;
  return Math.min(SLIDER_MAX, Math.max(SLIDER_MIN, value));
}

// The clip for the left image at slider `value`: hide (100 - value)% from the right.
export function leftClip(value) {
  return `inset(0 ${SLIDER_MAX - sliderValue(value)}% 0 0)`;
}

// How the slider reads to a screen reader: how much of each image shows.
export function sliderText(value, leftName, rightName) {
  const shown = Math.round(sliderValue(value));
  return `${shown}% ${leftName}, ${100 - shown}% ${rightName}`;
}
