// Which form field a daemon error belongs to. Two shapes reach the app (docs/rpc.md): a schema failure's
// `data` is a list of {field, message} with dotted paths ("axes.steps", "prompts.0"); an experiment spec error's
// `data` is one {field, value, ...} whose field is an axis or parameter name ("steps", "sampler"), and whose text
// is the error's message. Both are turned into {field: message} keyed by the form's own field names.

// Top-level parameter names of the named kinds -> the builder field they come from.
const ALIASES = { prompts: 'prompt', models: 'model', samplers: 'sampler', seeds: 'seed', cfg: 'cfg_scale' };

function formField(path) {
  if (path === null || path === undefined || path === '') return null;
  const parts = String(path).split('.');
  // "axes.steps" and "base.width" name the axis or parameter; "prompts.0" the prompts field.
  const name = parts[0] === 'axes' || parts[0] === 'base' ? parts[1] : parts[0];
  return name === undefined ? null : ALIASES[name] || name;
}

export function fieldErrors(error) {
  const found = {};
  if (!error || error.code !== 'invalid_params') return found;
  const { data } = error;
  if (Array.isArray(data)) {
    for (const failure of data) {
      const field = failure && formField(failure.field);
      if (field && !(field in found)) found[field] = failure.message;
    }
  } else if (data && typeof data === 'object') {
    const field = formField(data.field);
    if (field) found[field] = error.message;
  }
  return found;
}

// The part of an error no field shows: the whole message when none of its fields is on the form.
export function unplacedError(error, shownFields) {
  if (!error) return null;
  const fields = Object.keys(fieldErrors(error));
  return fields.some((field) => shownFields.includes(field)) ? null : error;
}
