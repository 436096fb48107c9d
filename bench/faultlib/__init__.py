"""Fault scenarios: each module here rehearses one fault against the real parts.

A scenario module exposes ``NAME`` (its key in the report) and
``run(workdir: Path, quick: bool, seed: int) -> FaultResult``. ``bench/faults.py`` runs them
all and reports; ``tests/faults/`` runs each with ``quick=True`` and asserts that nothing was
lost, nothing was counted twice and the API never answered 5xx.
"""
