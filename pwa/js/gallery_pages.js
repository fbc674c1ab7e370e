// The gallery's list in memory: pages appended newest first, images taken out when deleted (here or on another
// device) and put back in id order when restored. Only what RPC returned is kept; nothing is cached across loads.

// `items` with `page` appended, leaving out ids already shown (a page fetched twice after a reconnect).
export function appendPage(items, page) {
  const seen = new Set(items.map((item) => item.id));
  return [...items, ...page.filter((item) => !seen.has(item.id))];
}

export function withoutIds(items, ids) {
  const gone = new Set(ids);
  return items.filter((item) => !gone.has(item.id));
}

// `items` (newest first: ids descending) with `back` put in their places; ids already there are replaced. An
// image older than the last one loaded stays out: it belongs to a page not fetched yet.
export function insertNewestFirst(items, back, { complete = false } = {}) {
  const oldest = items.length ? items[items.length - 1].id : Infinity;
  const fresh = back.filter((item) => complete || item.id >= oldest);
  const merged = new Map(items.map((item) => [item.id, item]));
  for (const item of fresh) merged.set(item.id, item);
  return [...merged.values()].sort((a, b) => b.id - a.id);
}

// Images newer than the newest shown (arrived while the gallery was open), from a fresh first page.
export function newerThan(items, firstPage) {
  const newest = items.length ? items[0].id : 0;
  return firstPage.filter((item) => item.id > newest);
}

export function replaceItem(items, updated) {
  return items.map((item) => (item.id === updated.id ? { ...item, ...updated } : item));
}
