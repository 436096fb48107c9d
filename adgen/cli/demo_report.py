"""How ``adgen demo`` talks: logs to a file, one line per warning on the console, a round
table that fits (or one line per round), and a closing summary in words."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from adgen.cli.output import fmt
from adgen.loop import LoopSummary, RoundReport

#: Below this console width the round table becomes one line per round.
TABLE_MIN_WIDTH = 110


class OneLine(logging.Formatter):
    """``level: message``, the message's first line only."""

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().splitlines()
        return f"{record.levelname.lower()}: {lines[0] if lines else ''}"


def no_traceback(record: logging.LogRecord) -> bool:
    """Records that carry an exception stay in the file: the demo reports each failed
    cycle itself, in one line with the log file's path."""
    return record.exc_info is None


def log_to_file(var_dir: Path) -> Path:
    """Send every log record (INFO and up) and Python warning to ``var_dir/demo.log``; the
    console keeps warnings and errors, one line each (failures with a traceback are the
    demo's own lines). Progress bars of the model libraries are switched off. Returns the
    log file's path."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "demo.log"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    to_file = logging.FileHandler(path, mode="w", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_console = logging.StreamHandler()
    to_console.setLevel(logging.WARNING)
    to_console.setFormatter(OneLine())
    to_console.addFilter(no_traceback)
    root.addHandler(to_file)
    root.addHandler(to_console)
    root.setLevel(logging.INFO)
    for noisy in ("kafka", "py.warnings", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.captureWarnings(True)
    warnings.simplefilter("ignore", FutureWarning)
    return path


def round_line(r: RoundReport) -> str:
    """One round in one line."""
    serving = ", ".join(f"{k}:v{v}" for k, v in r.serving.items())
    parts = [
        f"round {r.round}: serving {serving}",
        f"true CTR {fmt(r.generated_true_ctr)}",
        f"served CTR {fmt(r.served_ctr)} over {r.impressions:,} impressions",
        f"regret {fmt(r.regret)}",
    ]
    if r.candidates:
        parts.append(
            "new candidate " + ", ".join(f"v{c}" for c in r.candidates)
            + f" (true CTR {fmt(r.candidate_true_ctr)})"
        )
    if r.promoted:
        parts.append("promoted " + ", ".join(f"v{v}" for v in r.promoted))
    if r.rolled_back:
        parts.append("rolled back " + ", ".join(f"v{v}" for v in r.rolled_back))
    return "; ".join(parts)


def print_rounds(console: Console, reports: Sequence[RoundReport]) -> None:
    """The rounds as a table when the console is a terminal wide enough, else one line each."""
    if not console.is_terminal or console.width < TABLE_MIN_WIDTH:
        for r in reports:
            console.print(round_line(r), soft_wrap=True, highlight=False)
        return
    table = Table(title="closed loop, per round")
    headers = ("round", "serving", "true CTR", "served CTR", "impr.", "regret",
               "candidate", "its CTR", "promoted", "rolled back")
    for header in headers:
        table.add_column(header, no_wrap=True)
    for r in reports:
        table.add_row(
            str(r.round),
            ", ".join(f"{k}:v{v}" for k, v in r.serving.items()),
            fmt(r.generated_true_ctr),
            fmt(r.served_ctr),
            f"{r.impressions:,}",
            fmt(r.regret),
            ", ".join(f"v{c}" for c in r.candidates) or "–",
            fmt(r.candidate_true_ctr),
            ", ".join(f"v{v}" for v in r.promoted) or "–",
            ", ".join(f"v{v}" for v in r.rolled_back) or "–",
        )
    console.print(table)


def failure_line(round_number: int, failure: str, log: Path) -> str:
    """A failed cycle or gate step: one line, its reason, where the details are."""
    reason = failure.splitlines()[0] if failure else "no reason given"
    return f"round {round_number}: {reason} (details in {log})"


def summary_lines(summary: LoopSummary) -> list[str]:
    """What the loop learned, in words."""
    lines = []
    for locale, version in summary.serving.items():
        lift = summary.lift.get(locale)
        if lift is None:
            lines.append(f"{locale}: the base model (v{version}) still serves.")
        else:
            lines.append(
                f"{locale}: v{version} serves; its texts' true CTR is {lift:+.1%} against the "
                f"base model's (v{summary.base[locale]})."
            )
    for version, reason in summary.rolled_back:
        lines.append(f"v{version} was rolled back: {reason}.")
    if summary.cycles == 0:
        lines.append("No training cycle ran.")
    elif summary.failed_cycles:
        lines.append(f"{summary.failed_cycles} of {summary.cycles} training cycles failed.")
    return lines
