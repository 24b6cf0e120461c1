"""Write one self-contained HTML page for a rerank run: metrics, per-query table, every trace with
the passages it discussed, filters and search in plain JavaScript (no kernel, no server).

    rearank-kit report runs/dl19-smol                      # -> runs/dl19-smol-report.html
    rearank-kit report runs/dl19-smol --out class/dl19.html
    rearank-kit report runs/dl19-smol --no-text            # docids only, safe to share

Query and passage text is joined from the benchmark the run reranked when the page is written
(--data, else the run's manifest), and the page says so; traces hold docids only. The page's
filters are in the URL hash (#qid=...&outcome=worse&claim=relevant&search=...), so a filtered
view can be shared as a link.
"""

from __future__ import annotations

import argparse
import json

from rearank_kit.commands._common import add_json

HELP = "write one self-contained HTML page for a rerank run (traces with text, filters, search)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a rerank run folder (rearank-kit rerank --out)")
    p.add_argument("--out", metavar="FILE", help="the page to write (default: RUN_DIR-report.html beside the folder)")
    p.add_argument("--data", metavar="NAME_OR_FOLDER",
                   help="the benchmark the run reranked, for the text (default: the run's manifest)")
    p.add_argument("--no-text", action="store_true", help="leave query and passage text out (docids only)")
    add_json(p)


def run(args: argparse.Namespace) -> int:
    from rearank_kit.analysis.report import write_report

    out = write_report(args.run, args.out, data=args.data, text=not args.no_text)
    if args.json:
        print(json.dumps({"run": args.run, "out": str(out), "text": not args.no_text}))
    else:
        print(f"wrote {out}")
    return 0
