// The compare slider's clip and text, worked by hand: at 30 the left image shows 30% from the left, so 70% of it
// is cut from the right.
import { leftClip, sliderText, sliderValue } from '/app/js/compare_math.js';
import { equal } from './assert.js';

export const tests = {
  'the left image is cut from the right by what the slider leaves'() {
    equal(leftClip(30), 'inset(0 70% 0 0)');
    equal(leftClip(0), 'inset(0 100% 0 0)');
    equal(leftClip(100), 'inset(0 0% 0 0)');
  },
  'values are clamped to 0..100; anything else is the middle'() {
    equal([sliderValue(150), sliderValue(-3), sliderValue('42'), sliderValue('abc')], [100, 0, 42, 50]);
  },
  'the slider says how much of each image shows'() {
    equal(sliderText(25, 'image 4', 'image 9'), '25% image 4, 75% image 9');
    equal(sliderText(33.6, 'a', 'b'), '34% a, 66% b');
  },
};
