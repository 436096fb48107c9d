"""The fault suite: every scenario in ``bench/faultlib/`` against the real parts.

A scenario is a module there with ``NAME`` and ``run(workdir, quick, seed)``; each runs in
a temporary folder of its own. Prints a table, then one JSON line (docs/benchmarks.md):
``{"bench": "faults", "seed": ..., "scenarios": {NAME: {sent, stored, lost, ...}}}``.
Usage: ``python bench/faults.py [--quick] [--seed N] [--only NAME ...]``; exits 1 when a
scenario lost, double counted or answered 5xx (or failed to run).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faultlib  # noqa: E402
from _report import emit, table  # noqa: E402
from faultlib.result import FaultResult  # noqa: E402

FIELDS = ("sent", "stored", "lost", "double_counted", "dead_lettered", "http_5xx")


def discover() -> dict[str, ModuleType]:
    """Scenario modules of ``faultlib`` by NAME (those with ``NAME`` and ``run``)."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(faultlib.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"faultlib.{info.name}")
        if hasattr(module, "NAME") and callable(getattr(module, "run", None)):
            found[module.NAME] = module
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (as the tests do)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this scenario (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)  # reconnect chatter while faults last
    scenarios = discover()
    unknown = sorted(set(args.only) - set(scenarios))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {sorted(scenarios)}")
    chosen = [name for name in scenarios if not args.only or name in args.only]
    results: dict[str, FaultResult] = {}
    rows = []
    for name in chosen:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"adgen-fault-{name}-") as workdir:
            try:
                result = scenarios[name].run(Path(workdir), args.quick, args.seed)
            except Exception as exc:  # noqa: BLE001 - a broken scenario is reported, not hidden
                logging.exception("scenario %s failed to run", name)
                result = FaultResult(name, 0, 0, 0, 0, 0, 0, f"failed to run: {exc}")
        results[name] = result
        rows.append((name, *(getattr(result, f) for f in FIELDS),
                     "yes" if result.clean and result.sent else "NO",
                     f"{time.monotonic() - started:.0f} s", result.details))
    table("fault scenarios", ("scenario", *FIELDS, "clean", "time", "details"), rows)
    emit({
        "bench": "faults",
        "seed": args.seed,
        "quick": args.quick,
        "scenarios": {name: {f: getattr(r, f) for f in FIELDS} for name, r in results.items()},
    })
    if not all(r.clean and r.sent for r in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
