// The one place the app imports its view library from: Preact, its hooks, htm (JSX-like templates without a
// build step) and preact-iso's router, all vendored in ../vendor/ (scripts/vendor_pwa.py).
import { h, render, Fragment, createContext } from '../vendor/preact.mjs';
import htm from '../vendor/htm.mjs';

export { h, render, Fragment, createContext };
export {
  useState, useEffect, useRef, useMemo, useCallback, useContext, useReducer, useLayoutEffect, useId,
} from '../vendor/preact-hooks.mjs';
export { LocationProvider, Router, Route, useLocation, useRoute } from '../vendor/preact-iso-router.mjs';

export const html = htm.bind(h);
