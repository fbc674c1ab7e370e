// A minimal runner for the app's unit tests: a test module exports `tests`, a map of name -> function (sync or
// async) that throws on failure. Results land in window.__results for the Python side to assert on.
const module = new URLSearchParams(location.search).get('module');
const results = { passed: [], failed: [] };
try {
  const { tests } = await import(`/__tests__/${module}`);
  for (const [name, test] of Object.entries(tests)) {
    try {
      await test();
      results.passed.push(name);
    } catch (error) {
      results.failed.push({ name, error: String(error && error.stack ? error.stack : error) });
    }
  }
} catch (error) {
  results.failed.push({ name: '(import)', error: String(error && error.stack ? error.stack : error) });
}
window.__results = results;
// A marker to wait for: Playwright's wait_for_function would need eval, which the app's CSP forbids.
const done = document.createElement('output');
done.id = 'results-ready';
done.textContent = `${results.passed.length} passed, ${results.failed.length} failed`;
document.body.append(done);
