// Which cached thumbnails to drop so that at most `maxEntries` and `maxBytes` remain. `entries` are oldest first
// ({request, bytes}); the oldest go first. The service worker loads this file with importScripts (a classic
// script) and the unit tests import it as a module, so it exports nothing and only sets one global.
self.cauldronThumbsToEvict = function thumbsToEvict(entries, maxEntries, maxBytes) {
  let count = entries.length;
  let bytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
  const evict = [];
  for (const entry of entries) {
    if (count <= maxEntries && bytes <= maxBytes) break;
    evict.push(entry.request);
    count -= 1;
    bytes -= entry.bytes;
  }
  return evict;
};
