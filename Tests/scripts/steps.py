"""The test scripts' one reporting convention: each step prints `<name> ok` or `<name> FAILED: …`, and the script
exits non-zero when any failed (`finish()`)."""
import sys

failures = 0


def step(name, fn):
    """Runs fn and reports it under name; an exception is a failure, never an abort."""
    global failures
    try:
        fn()
        print(f"{name} ok", flush=True)
    except Exception as e:  # noqa: BLE001 — every failure is reported by name
        failures += 1
        print(f"{name} FAILED: {type(e).__name__}: {e}", flush=True)


def fail(what):
    """A failure outside a step."""
    global failures
    failures += 1
    print(what, flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def finish():
    sys.exit(1 if failures else 0)
