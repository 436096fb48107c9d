"""schemathesis over the whole API (admin token included), positive and negative inputs,
against the real app on PostgreSQL and the embedded broker: no server error, and every
answer fits its declared status, content type and schema.

``POST /v1/campaigns/{id}/variants:generate`` runs with a base model that does not exist,
so it answers its declared 503 instead of loading a language model (generation itself is
tested in tests/test_generator.py); that 503 is declared, expected and not counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err, Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from faultlib.api_harness import ApiStack, api_stack
from faultlib.result import FaultResult

NAME = "schemathesis_api"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
#: Operations that answer a declared 503 here on purpose (no model in the harness).
MODEL_BOUND = ("variants:generate",)


@dataclass
class _Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0


def operation_of(result: Ok[APIOperation] | Err[InvalidSchema]) -> APIOperation:
    """The operation, or the schema's own error: an operation the schema declares wrongly is
    itself a finding, not one to skip."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


def run(workdir: Path, quick: bool, seed: int) -> FaultResult:
    """Fuzz every operation; ``http_5xx`` counts server errors, ``details`` lists the checks
    that failed (an empty list when every answer matched its declaration)."""
    examples = 25 if quick else 150
    tally = _Tally()
    with api_stack(workdir) as stack:
        cid, _ = stack.campaign()
        stack.wait_servable(cid)
        schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
        operations = [operation_of(result) for result in schema.get_all_operations()]
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, stack, tally, examples, seed)
    calls = sum(tally.statuses.values())
    shown = "; ".join(f"{k} x{n}" for k, n in tally.failures.most_common(10))
    return FaultResult(
        scenario=NAME, sent=calls, stored=0, lost=0, double_counted=0, dead_lettered=0,
        http_5xx=tally.server_errors,
        details=f"{len(operations)} operations, {calls} requests, statuses "
                f"{dict(sorted(tally.statuses.items()))}; schema failures: "
                f"{sum(tally.failures.values())}" + (f" ({shown})" if shown else ""),
    )


def _fuzz(operation: Any, mode: GenerationMode, stack: ApiStack, tally: _Tally,
          examples: int, seed: int) -> None:
    model_bound = any(m in operation.path for m in MODEL_BOUND)

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def probe(case: schemathesis.Case) -> None:
        response = case.call(base_url=stack.base_url, headers=stack.admin, timeout=30)
        tally.statuses[response.status_code] += 1
        if response.status_code == 503 and model_bound:
            return
        if response.status_code >= 500:
            tally.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as exc:
            tally.failures[f"{operation.label}: {_title(exc)}"] += 1

    try:
        probe()
    except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters)
        if mode is GenerationMode.POSITIVE:
            raise


def _title(exc: Failure | FailureGroup) -> str:
    if isinstance(exc, FailureGroup):
        return ", ".join(sorted({f.title for f in exc.exceptions}))
    return exc.title
