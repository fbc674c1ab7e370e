// The text chunks of a PNG (the PNG specification, section 11.3.4): the daemon writes A1111's infotext in a
// `parameters` chunk, tEXt when it is Latin-1 and uncompressed iTXt (UTF-8) otherwise (media/png.py). The viewer
// already downloads the full PNG to show it, so the infotext comes from the very bytes the user sees.
const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function chunkType(bytes, at) {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

// {keyword: text} for every tEXt chunk and every uncompressed iTXt chunk; null when `bytes` is not a PNG.
// Compressed chunks (zTXt, compressed iTXt) are left out: the daemon never writes them.
export function pngTextChunks(bytes) {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const texts = {};
  let at = 8;
  while (at + 12 <= bytes.length) {
    const length = view.getUint32(at);
    const type = chunkType(bytes, at + 4);
    const start = at + 8;
    const end = start + length;
    if (end + 4 > bytes.length) break; // truncated: keep what was read
    const data = bytes.subarray(start, end);
    const nul = data.indexOf(0);
    if (type === 'tEXt' && nul > 0) {
      texts[new TextDecoder('latin1').decode(data.subarray(0, nul))] = new TextDecoder('latin1').decode(data.subarray(nul + 1));
    } else if (type === 'iTXt' && nul > 0 && data[nul + 1] === 0) {
      // keyword NUL, compression flag, method, language tag NUL, translated keyword NUL, UTF-8 text
      const language = data.indexOf(0, nul + 3);
      const translated = language < 0 ? -1 : data.indexOf(0, language + 1);
      if (translated >= 0) {
        texts[new TextDecoder('latin1').decode(data.subarray(0, nul))] = new TextDecoder('utf-8').decode(data.subarray(translated + 1));
      }
    }
    if (type === 'IEND') break;
    at = end + 4; // past the CRC
  }
  return texts;
}
