// Daemon errors placed at the builder's fields: both shapes docs/rpc.md describes, written out by hand.
import { RpcError } from '/app/js/rpc.js';
import { fieldErrors, unplacedError } from '/app/js/field_errors.js';
import { equal } from './assert.js';

export const tests = {
  'a spec error names its axis or parameter; the message is the error text'() {
    const error = new RpcError('invalid_params', "axis 'steps': bad range '2-x'", { field: 'steps', value: '2-x' });
    equal(fieldErrors(error), { steps: "axis 'steps': bad range '2-x'" });
  },
  'schema failures: dotted paths, named-kind parameters mapped to the form fields, first message wins'() {
    const error = new RpcError('invalid_params', 'experiments.convergence: ...', [
      { field: 'prompts.0', message: 'Input should be a valid string' },
      { field: 'prompts.1', message: 'second' },
      { field: 'axes.steps', message: 'bad steps' },
      { field: 'cfg', message: 'bad cfg' },
      { field: '', message: 'whole params' },
    ]);
    equal(fieldErrors(error), { prompt: 'Input should be a valid string', steps: 'bad steps', cfg_scale: 'bad cfg' });
  },
  'other errors belong to no field'() {
    equal(fieldErrors(new RpcError('not_found', 'no image 5')), {});
    equal(fieldErrors(null), {});
  },
  'an error none of whose fields is on the form is shown whole'() {
    const error = new RpcError('invalid_params', "unknown axis 'stepz'", { field: 'stepz' });
    equal(unplacedError(error, ['steps', 'prompt']), error);
    equal(unplacedError(error, ['stepz']), null);
  },
};
