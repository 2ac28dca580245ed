"""Command line: ``commentary run [--runner dask [--scheduler ADDRESS]]``, ``commentary eval``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from commentary.settings import SHARD_SIZE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="commentary", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline on a raw folder and publish a release")
    run.add_argument("--raw", default="raw", help="raw landing folder (default: raw)")
    run.add_argument("--curated", default="curated", help="curated output folder (default: curated)")
    run.add_argument("--shard-size", type=int, default=SHARD_SIZE, help=f"documents per shard (default: {SHARD_SIZE})")
    run.add_argument("--runner", choices=("local", "dask"), default="local",
                     help="run shards on local threads or on a Dask cluster (default: local)")
    run.add_argument("--scheduler", help="with --runner dask: address of an existing Dask scheduler "
                                         "(default: start a LocalCluster)")
    evaluate = commands.add_parser("eval", help="score cleaning on the seeds' gold and the benchmark split; non-zero below the floors")
    evaluate.add_argument("--shared", default="../shared", help="folder with gold/, benchmark/ and tools/ (default: ../shared)")
    evaluate.add_argument("--seeds", default="raw", help="raw folder holding the seed pages (default: raw)")
    evaluate.add_argument("--work", default=".cache/eval", help="scratch folder for the runs (default: .cache/eval)")
    args = parser.parse_args(argv)
    if args.command == "run":
        from contextlib import ExitStack

        from flows.pipeline import shared_api_server, with_runner

        with ExitStack() as stack:
            if args.runner == "dask":
                shared_api_server(stack)
            entry = with_runner(args.runner, args.scheduler)(raw=args.raw, curated=args.curated, shard_size=args.shard_size)
        print(json.dumps(entry, indent=2, default=str))
        return 0 if entry["release"].get("published") or "nothing changed" in entry["release"].get("reason", "") else 1
    if args.command == "eval":
        from commentary.evaluation import evaluate

        return evaluate(Path(args.shared), Path(args.seeds), Path(args.work))
    return 2


if __name__ == "__main__":
    sys.exit(main())
