// useDraft keeps what the user typed in localStorage until it is cleared; checked by reading localStorage itself
// (JSON, under "cauldron.draft.<key>") and by mounting the hook again, as a reload would.
import { html, render } from '/app/js/lib.js';
import { useDraft } from '/app/js/store.js';
import { equal, ok } from './assert.js';

function mount(key, initial) {
  const root = document.createElement('div');
  document.body.append(root);
  let handle = null;
  function Probe() {
    handle = useDraft(key, initial);
    return null;
  }
  render(html`<${Probe} />`, root); // a first render is synchronous
  return {
    value: () => handle[0],
    set: (next) => handle[1](next),
    clear: () => handle[2](),
    unmount: () => { render(null, root); root.remove(); },
  };
}

export const tests = {
  'starts from the initial value when nothing is stored'() {
    localStorage.removeItem('cauldron.draft.fresh');
    const draft = mount('fresh', { prompt: '' });
    equal(draft.value(), { prompt: '' });
    equal(localStorage.getItem('cauldron.draft.fresh'), null, 'nothing stored before typing');
    draft.unmount();
  },
  'what was typed survives a remount (a reload)'() {
    localStorage.removeItem('cauldron.draft.typed');
    const first = mount('typed', { prompt: '' });
    first.set({ prompt: 'a fox' });
    equal(localStorage.getItem('cauldron.draft.typed'), '{"prompt":"a fox"}');
    first.unmount();
    const second = mount('typed', { prompt: '' });
    equal(second.value(), { prompt: 'a fox' });
    second.unmount();
  },
  'an updater sees the latest draft'() {
    localStorage.removeItem('cauldron.draft.steps');
    const draft = mount('steps', 'a');
    draft.set((old) => old + 'b');
    draft.set((old) => old + 'c');
    equal(localStorage.getItem('cauldron.draft.steps'), '"abc"');
    draft.unmount();
  },
  'clear forgets the draft (after a submit)'() {
    const draft = mount('sent', '');
    draft.set('queued this');
    ok(localStorage.getItem('cauldron.draft.sent') !== null, 'the draft stored');
    draft.clear();
    equal(localStorage.getItem('cauldron.draft.sent'), null, 'stored draft after clear');
    draft.unmount();
    const again = mount('sent', '');
    equal(again.value(), '');
    again.unmount();
  },
  'drafts of two keys are separate, and a broken one falls back to the initial value'() {
    localStorage.setItem('cauldron.draft.one', '"first"');
    localStorage.setItem('cauldron.draft.two', '{not json');
    const one = mount('one', '');
    const two = mount('two', 'initial');
    equal([one.value(), two.value()], ['first', 'initial']);
    one.unmount();
    two.unmount();
  },
};
