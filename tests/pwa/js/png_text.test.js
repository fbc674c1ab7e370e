// PNG text chunks read from bytes laid out by hand after the PNG specification (11.3.4.3 tEXt, 11.3.4.5 iTXt):
// length (4 bytes, big-endian), type, data, CRC (zeros here: the reader does not need it).
import { pngTextChunks } from '/app/js/png_text.js';
import { equal } from './assert.js';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function chunk(type, data) {
  const n = data.length;
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, ...[...type].map((c) => c.charCodeAt(0)), ...data, 0, 0, 0, 0];
}
const latin1 = (text) => [...text].map((c) => c.charCodeAt(0));
const utf8 = (text) => [...new TextEncoder().encode(text)];

function png(...chunks) {
  return new Uint8Array([...SIGNATURE, ...chunk('IHDR', new Array(13).fill(0)), ...chunks.flat(), ...chunk('IEND', [])]);
}

export const tests = {
  'a tEXt chunk: keyword, NUL, Latin-1 text'() {
    const bytes = png(chunk('tEXt', [...latin1('parameters'), 0, ...latin1('a cat\nSteps: 2, Sampler: Euler, CFG scale: 7')]));
    equal(pngTextChunks(bytes), { parameters: 'a cat\nSteps: 2, Sampler: Euler, CFG scale: 7' });
  },
  'Latin-1 bytes above 127 are their own characters'() {
    equal(pngTextChunks(png(chunk('tEXt', [...latin1('k'), 0, 0xe9]))), { k: 'é' });
  },
  'an uncompressed iTXt chunk: keyword, flags, language, translated keyword, UTF-8 text'() {
    const data = [...latin1('parameters'), 0, 0, 0, ...latin1('en'), 0, 0, ...utf8('un café ☕\nSteps: 2')];
    equal(pngTextChunks(png(chunk('iTXt', data))), { parameters: 'un café ☕\nSteps: 2' });
  },
  'a compressed iTXt chunk is left out'() {
    const data = [...latin1('other'), 0, 1, 0, 0, 0, 120, 156, 3, 0, 0, 0, 0, 1];
    equal(pngTextChunks(png(chunk('tEXt', [...latin1('a'), 0, ...latin1('b')]), chunk('iTXt', data))), { a: 'b' });
  },
  'not a PNG'() {
    equal(pngTextChunks(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), null);
  },
  'a truncated file keeps the chunks before the cut'() {
    const whole = png(chunk('tEXt', [...latin1('a'), 0, ...latin1('b')]), chunk('tEXt', [...latin1('c'), 0, ...latin1('dddd')]));
    equal(pngTextChunks(whole.subarray(0, whole.length - 20)), { a: 'b' });
  },
};
