/**
 * The integration tier runs real servers and processes on a shared 2-core box, where a test now and then
 * loses a race with the machine rather than with the code (CI history: a worker that did not drain, a
 * time-skipping sleep that never woke). Such a test runs once more; the first attempt's errors are printed
 * ("… retry 1"), so a flake stays visible in the log instead of being hidden or failing the whole run.
 * A test that fails twice fails.
 */
jest.retryTimes(1, { logErrorsBeforeRetry: true });
