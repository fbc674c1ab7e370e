// How fast an experiment is making images, and when it will be done, from what the daemon recorded: the
// creation times of its newest images (images.list, newest first) and its counts. Read from the store rather
// than counted in the browser, so a reload or another device shows the same figures at once.

// Images per second over the newest images: (n - 1) intervals between the oldest and newest of them. null when
// fewer than two images or no time passed (a single batch finishing at once says nothing about the rate).
export function imagesPerSecond(createdAts) {
  const times = createdAts.map((text) => Date.parse(text)).filter(Number.isFinite);
  if (times.length < 2) return null;
  const seconds = (Math.max(...times) - Math.min(...times)) / 1000;
  if (seconds <= 0) return null;
  return (times.length - 1) / seconds;
}

// Seconds until the experiment's remaining (queued + running) images are made at `rate`; null when unknown.
export function etaSeconds(counts, rate) {
  if (!counts || !rate) return null;
  const remaining = (counts.queued || 0) + (counts.running || 0);
  return remaining / rate;
}

// The share of an experiment's cells that have an outcome (done, failed or cancelled), 0..1.
export function finishedShare(counts) {
  if (!counts || !counts.total) return 0;
  return ((counts.done || 0) + (counts.failed || 0) + (counts.cancelled || 0)) / counts.total;
}

export function formatRate(rate) {
  if (rate === null || rate === undefined) return '— images/s';
  if (rate >= 1) return `${rate.toFixed(1)} images/s`;
  return `${(60 * rate).toFixed(1)} images/min`;
}
