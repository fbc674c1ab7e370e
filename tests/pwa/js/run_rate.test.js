// Images per second and time left, checked against hand arithmetic.
import { etaSeconds, finishedShare, formatRate, imagesPerSecond } from '/app/js/run_rate.js';
import { equal } from './assert.js';

export const tests = {
  'five images over eight seconds are four intervals: 0.5 images/s'() {
    const times = ['2026-01-01T00:00:08Z', '2026-01-01T00:00:06Z', '2026-01-01T00:00:04Z', '2026-01-01T00:00:02Z', '2026-01-01T00:00:00Z'];
    equal(imagesPerSecond(times), 0.5);
  },
  'offsets and milliseconds are read'() {
    // 10:00:00.500+01:00 is 09:00:00.500Z; two images 2.5 s apart: 1 interval / 2.5 s = 0.4.
    equal(imagesPerSecond(['2026-01-01T10:00:00.500+01:00', '2026-01-01T09:00:03.000+00:00']), 0.4);
  },
  'one image, or a batch finishing at once, gives no rate'() {
    equal(imagesPerSecond(['2026-01-01T00:00:00Z']), null);
    equal(imagesPerSecond(['2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z']), null);
  },
  'time left counts queued and running at the rate'() {
    // 30 queued + 4 running at 0.5/s = 68 s.
    equal(etaSeconds({ queued: 30, running: 4, done: 6, total: 40 }, 0.5), 68);
    equal(etaSeconds({ queued: 3, running: 0 }, null), null);
  },
  'finished share counts done, failed and cancelled'() {
    equal(finishedShare({ done: 5, failed: 2, cancelled: 1, queued: 12, running: 0, total: 20 }), 0.4);
    equal(finishedShare({ total: 0 }), 0);
  },
  'rates under one a second are given a minute'() {
    equal(formatRate(2.25), '2.3 images/s'); // toFixed(1) of 2.25 rounds to 2.3 in binary floating point
    equal(formatRate(0.05), '3.0 images/min');
    equal(formatRate(null), '— images/s');
  },
};
