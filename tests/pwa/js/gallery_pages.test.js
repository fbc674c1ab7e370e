// The gallery's list: pages appended without repeats, images taken out and put back in newest-first order.
import { appendPage, insertNewestFirst, newerThan, replaceItem, withoutIds } from '/app/js/gallery_pages.js';
import { equal } from './assert.js';

const list = (...ids) => ids.map((id) => ({ id }));
const idsOf = (items) => items.map((item) => item.id);

export const tests = {
  'a page is appended; ids already shown are not repeated'() {
    equal(idsOf(appendPage(list(9, 8, 7), list(7, 5, 4))), [9, 8, 7, 5, 4]);
  },
  'deleted images leave the list'() {
    equal(idsOf(withoutIds(list(9, 8, 7, 5), [8, 5, 3])), [9, 7]);
  },
  'a restored image goes back in its place; one older than the loaded pages waits for its page'() {
    equal(idsOf(insertNewestFirst(list(9, 7, 4), list(8, 2))), [9, 8, 7, 4]);
    equal(idsOf(insertNewestFirst(list(9, 7, 4), list(8, 2), { complete: true })), [9, 8, 7, 4, 2]);
    equal(idsOf(insertNewestFirst(list(9, 7), list(7))), [9, 7]);
  },
  'only images newer than the newest shown are new'() {
    equal(idsOf(newerThan(list(9, 7), list(12, 11, 9, 7))), [12, 11]);
    equal(idsOf(newerThan([], list(3, 2))), [3, 2]);
  },
  'an update merges into its image'() {
    equal(replaceItem([{ id: 1, favorite: false, rating: null, url: 'u' }], { id: 1, favorite: true }),
      [{ id: 1, favorite: true, rating: null, url: 'u' }]);
  },
};
