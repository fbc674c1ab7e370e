// A value that follows another after it has stopped changing for `ms`: the builder asks the daemon for a plan
// once the user pauses typing, not on every key.
import { useEffect, useState } from './lib.js';

export function useDebounced(value, ms) {
  const [settled, setSettled] = useState(value);
  const key = JSON.stringify(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [key, ms]);
  return settled;
}
