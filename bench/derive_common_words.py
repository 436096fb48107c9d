"""Derive ``adgen/data/common_words_en.txt``, the ordinary English words of the
``invented_name`` guardrail (a capitalised word in this list is not taken for a name).

The list is the union of

- the words written in lower case at least ``--min-count`` times in the Upworthy headlines,
  ledes and excerpts (so "boston" does not qualify: it is always capitalised);
- the whole-word lower-case tokens of 4+ letters of the SmolLM2 tokenizer (the bundled
  model's ``tokenizer.json``): its byte-pair vocabulary holds the frequent words of its web
  corpus, e.g. "waterproof", "subscription";
- the weekdays, months, a few holidays and nationalities, which English always capitalises.

Deterministic: the same inputs give the same file (one word a line, sorted).

    python bench/derive_common_words.py --data FILE --tokenizer FILE --out FILE [--min-count 3]

Data: the Upworthy Research Archive (Matias, Munger, Aubin Le Quere, Ebersole, 2021,
Scientific Data 8:195, doi:10.1038/s41597-021-00934-7), CC BY 4.0; SmolLM2-135M-Instruct
(Hugging Face), Apache-2.0.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import json
import re
from collections import Counter
from pathlib import Path

_WORD = re.compile(r"[A-Za-z]+")
_TAG = re.compile(r"<[^>]+>")
_BPE_WORD = re.compile(r"Ġ([a-z]{4,})")
CAPITALISED = (
    *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    *("january", "february", "march", "april", "may", "june", "july", "august"),
    *("september", "october", "november", "december"),
    *("christmas", "easter", "halloween", "thanksgiving"),
    *("african", "american", "asian", "british", "canadian", "chinese", "english", "european"),
    *("french", "german", "indian", "irish", "italian", "japanese", "korean", "mexican"),
    *("spanish",),
)


def upworthy_words(path: Path, min_count: int) -> set[str]:
    """Words seen in lower case at least ``min_count`` times in the archive's texts."""
    counts: Counter[str] = Counter()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for column in ("headline", "lede", "excerpt"):
                text = _TAG.sub(" ", html.unescape(row.get(column) or ""))
                counts.update(w for w in _WORD.findall(text) if w.islower())
    return {w for w, n in counts.items() if n >= min_count}


def tokenizer_words(path: Path) -> set[str]:
    """The whole-word lower-case tokens of 4+ letters of a byte-level BPE tokenizer."""
    vocab: dict[str, int] = json.loads(path.read_text("utf-8"))["model"]["vocab"]
    return {m.group(1) for token in vocab if (m := _BPE_WORD.fullmatch(token))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="Upworthy tests (.csv.gz)")
    parser.add_argument("--tokenizer", type=Path, required=True, help="SmolLM2 tokenizer.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--min-count", type=int, default=3)
    args = parser.parse_args()
    words = upworthy_words(args.data, args.min_count) | tokenizer_words(args.tokenizer)
    words |= set(CAPITALISED)
    args.out.write_text("".join(f"{w}\n" for w in sorted(words)), "utf-8")
    print(f"{len(words)} words -> {args.out}")


if __name__ == "__main__":
    main()
