"""Benchmark: cleaning speed, then full, unchanged and 1%-changed runs on corpora of real-sized pages.

    python -m tools.bench [--sizes 1000,10000,20000,100000] [--work .cache/bench] [--shared ../shared]
                          [--cleaning-only] [--dask] [--warc-pages 2000] [--small-pages 10000]

Cleaning speed comes first (``tools.speed`` on the shared benchmark and pool pages, one Polars
thread, a minute or less); ``--cleaning-only`` stops there.

Corpora are built from the real benchmark and pool pages (``tools.realpages``: text pages of real
size, about 180 non-blank lines). Every run is a ``commentary run`` subprocess against one local
Prefect server (started here), measured from outside: wall time, CPU time (the run's process and the
processes it waited for, Dask workers included) and peak resident memory of the largest process.
Per-stage CPU milliseconds per page come from the same steps run one after the other on one Polars
thread (``tools.stagecpu``), for sizes up to ``--stage-cpu-max``. Then a WARC run (HTML pages as
response records of four ``.warc.gz`` files, against the same pages as ``.html`` files, and its
unchanged re-run), and the old small synthetic pages (``tools.synthetic``) as a second line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from commentary import reader
from commentary.server import local_server
from commentary.settings import SHARD_ALLOCATOR_ENVIRONMENT
from tools import realpages, synthetic

REPO = Path(__file__).resolve().parents[1]
COMMAND = [str(Path(sys.executable).with_name("commentary")), "run", "--json"]


def measure(args: list[str], env: dict | None = None) -> dict:
    """Run ``commentary run ARGS``; wall and CPU seconds, peak RSS (MiB) and the ledger entry it printed.

    CPU seconds (user and system, of the run's process and the processes it waited for) are the
    figure to compare when other jobs share the machine.
    """
    started = time.perf_counter()
    process = subprocess.Popen(COMMAND + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"commentary run {' '.join(args)} failed with status {status}")
    entry = json.loads(output)
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "entry": entry}


def corpus(work: Path, shared: Path, pages: int) -> Path:
    """The real-size text corpus of ``pages`` pages, generated once."""
    raw = work / f"raw-real-{pages}"
    done = raw.with_name(raw.name + ".complete")  # beside the corpus: a file inside it would be a raw file too
    if not done.is_file():
        shutil.rmtree(raw, ignore_errors=True)
        realpages.generate(raw, pages, shared, work)
        done.write_text("")
    return raw


def stage_cpu(raw: Path, curated: Path) -> dict:
    """``tools.stagecpu`` on ``raw`` in a fresh ``curated`` folder, on one Polars thread: CPU ms per page and peak memory after each stage."""
    shutil.rmtree(curated, ignore_errors=True)
    env = {**os.environ, "POLARS_MAX_THREADS": "1", **SHARD_ALLOCATOR_ENVIRONMENT}
    process = subprocess.run([sys.executable, "-m", "tools.stagecpu", str(raw), str(curated)], env=env, capture_output=True, text=True, check=True)
    return json.loads(process.stdout)


def bench_size(work: Path, shared: Path, pages: int, env: dict, dask: bool, stage_cpu_max: int) -> dict:
    raw = corpus(work, shared, pages)
    curated = work / f"curated-{pages}"
    shutil.rmtree(curated, ignore_errors=True)
    base = ["--raw", str(raw), "--curated", str(curated)]
    full = measure(base, env)
    full_release = reader.latest_version(curated)
    full_fingerprint = _fingerprint(curated)
    unchanged = measure(base, env)
    added = realpages.generate(raw, max(1, pages // 100), shared, work, start=pages)
    try:
        changed = measure(base, env)
    finally:
        for path in added:
            path.unlink()
    row = {
        "pages": pages, "bytes_per_page": round(sum(p.stat().st_size for p in raw.rglob("*.txt")) / pages),
        "full_seconds": full["wall_seconds"], "full_cpu_seconds": full["cpu_seconds"], "full_peak_rss_mib": full["peak_rss_mib"],
        "pages_per_second": round(pages / full["wall_seconds"], 1),
        "cpu_ms_per_page": round(1000 * full["cpu_seconds"] / pages, 2),
        "stage_pages_per_second": {name: s["pages_per_second"] for name, s in full["entry"]["timings"]["stages"].items()},
        "output_bytes": sum(f["bytes"] for f in reader.read_manifest(curated, full_release)["files"].values()) if full_release else None,
        "released": full["entry"]["released"], "release": full["entry"]["release"].get("version"),
        "unchanged_seconds": unchanged["wall_seconds"], "unchanged_share": round(unchanged["wall_seconds"] / full["wall_seconds"], 3),
        "unchanged_cpu_seconds": unchanged["cpu_seconds"], "unchanged_cpu_share": round(unchanged["cpu_seconds"] / full["cpu_seconds"], 3),
        "changed_1pct_seconds": changed["wall_seconds"], "changed_1pct_share": round(changed["wall_seconds"] / full["wall_seconds"], 3),
    }
    if pages <= stage_cpu_max:
        stages = stage_cpu(raw, work / f"curated-{pages}-stages")
        row |= {"stage_cpu_ms_per_page": stages["cpu_ms_per_page"], "stage_peak_rss_mib": stages["peak_rss_mib"]}
    if dask:
        dask_curated = work / f"curated-{pages}-dask"
        shutil.rmtree(dask_curated, ignore_errors=True)
        result = measure(["--raw", str(raw), "--curated", str(dask_curated), "--runner", "dask"], env)
        row |= {"dask_seconds": result["wall_seconds"], "dask_cpu_seconds": result["cpu_seconds"], "dask_peak_rss_mib": result["peak_rss_mib"],
                "dask_same_release": full_fingerprint is not None and _fingerprint(dask_curated) == full_fingerprint}
    return row


def bench_warc(work: Path, shared: Path, pages: int, env: dict) -> dict:
    """The same HTML pages as WARC response records and as ``.html`` files: full runs, and the WARC's unchanged re-run."""
    runs = {}
    for kind in ("warc", "files"):
        raw = work / f"raw-{kind}-{pages}"
        done = raw.with_name(raw.name + ".complete")
        if not done.is_file():
            shutil.rmtree(raw, ignore_errors=True)
            if kind == "warc":
                realpages.generate_warc(raw, pages, shared, work)
            else:
                realpages.generate(raw, pages, shared, work, html_every=1)
            done.write_text("")
        curated = work / f"curated-{kind}-{pages}"
        shutil.rmtree(curated, ignore_errors=True)
        runs[kind] = measure(["--raw", str(raw), "--curated", str(curated)], env)
        if kind == "warc":
            runs["unchanged"] = measure(["--raw", str(raw), "--curated", str(curated)], env)
    return {"pages": pages} | {f"{kind}_{name}": run[key] for kind, run in runs.items()
                               for name, key in (("seconds", "wall_seconds"), ("cpu_seconds", "cpu_seconds"), ("peak_rss_mib", "peak_rss_mib"))} | {
        "warc_released": runs["warc"]["entry"]["released"], "files_released": runs["files"]["entry"]["released"],
        "warc_pages_per_second": round(pages / runs["warc"]["wall_seconds"], 1),
        "files_pages_per_second": round(pages / runs["files"]["wall_seconds"], 1),
        "unchanged_share": round(runs["unchanged"]["wall_seconds"] / runs["warc"]["wall_seconds"], 3)}


def bench_small(work: Path, pages: int, env: dict) -> dict:
    """The earlier small synthetic pages (10-30 lines), one full run: the figures before real-size pages."""
    raw = work / f"raw-{pages}"
    done = raw.with_name(raw.name + ".complete")
    if not done.is_file():
        shutil.rmtree(raw, ignore_errors=True)
        synthetic.generate(raw, pages)
        done.write_text("")
    curated = work / f"curated-small-{pages}"
    shutil.rmtree(curated, ignore_errors=True)
    result = measure(["--raw", str(raw), "--curated", str(curated)], env)
    return {"pages": pages, "seconds": result["wall_seconds"], "cpu_seconds": result["cpu_seconds"], "peak_rss_mib": result["peak_rss_mib"],
            "pages_per_second": round(pages / result["wall_seconds"], 1)}


def _fingerprint(curated: Path) -> str | None:
    return reader.read_manifest(curated)["content_fingerprint"] if reader.latest_version(curated) else None


def seeds_run(work: Path) -> dict:
    """The five seeds end to end, with the temporary Prefect server a plain ``commentary run`` starts."""
    curated = work / "curated-seeds"
    shutil.rmtree(curated, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = measure(["--raw", str(REPO / "raw"), "--curated", str(curated)], env)
    return {"seconds": result["wall_seconds"], "peak_rss_mib": result["peak_rss_mib"]}


def cleaning_speed(shared: Path | None) -> list[str]:
    """The text and HTML path figures of ``tools.speed``, measured on one core, as printed."""
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}
    command = [sys.executable, "-m", "tools.speed", *(["--shared", str(shared)] if shared else [])]
    process = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return process.stdout.splitlines()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,20000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench", help="corpora and outputs")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="folder with benchmark/, pool/ and tools/flatten.py")
    parser.add_argument("--cleaning-only", action="store_true", help="print the cleaning speed figures and stop")
    parser.add_argument("--dask", action="store_true", help="also run each size on the Dask runner")
    parser.add_argument("--stage-cpu-max", type=int, default=20000, help="measure CPU per stage for sizes up to this")
    parser.add_argument("--warc-pages", type=int, default=2000, help="HTML pages of the WARC run (0: none)")
    parser.add_argument("--small-pages", type=int, default=10000, help="pages of the small synthetic run (0: none)")
    args = parser.parse_args(argv)
    results = {"machine": _machine(), "date": time.strftime("%Y-%m-%d"), "cleaning": cleaning_speed(args.shared)}
    print("\n".join(results["cleaning"]), flush=True)
    if args.cleaning_only:
        return
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["COMMENTARY_MIN_FILE_AGE_SECONDS"] = "0"  # corpora are written just before they are run
    results.update(seeds=seeds_run(args.work), sizes=[])
    print(f"seeds end to end: {results['seeds']['seconds']} s, peak {results['seeds']['peak_rss_mib']} MiB", flush=True)
    with local_server(_free_port(), log=args.work / "server.log") as url:
        env = {**os.environ, "PREFECT_API_URL": url}
        for pages in map(int, args.sizes.split(",")):
            row = bench_size(args.work, args.shared, pages, env, args.dask, args.stage_cpu_max)
            results["sizes"].append(row)
            print(json.dumps(row), flush=True)
        if args.warc_pages:
            results["warc"] = bench_warc(args.work, args.shared, args.warc_pages, env)
            print(json.dumps(results["warc"]), flush=True)
        if args.small_pages:
            results["small"] = bench_small(args.work, args.small_pages, env)
            print(json.dumps(results["small"]), flush=True)
    (args.work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))


def _machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").is_file() else "unknown CPU"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {model}, {memory:.0f} GiB RAM, Python {sys.version.split()[0]}"


def _table(results: dict) -> str:
    """The results against the targets, as Markdown tables."""
    lines = ["| real-size pages | full s (CPU s) | pages/s (target >= 500) | CPU ms/page | peak MiB (target <= 2048) | output MiB "
             "| CPU ms/page per stage: ingest, clean (target <= 2), curate, quality, release "
             "| unchanged s (share; target <= 15% at 20k, <= 10% at 100k) | +1% s (share) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["sizes"]:
        stages = r.get("stage_cpu_ms_per_page")
        per_stage = ", ".join(f"{stages[s]:.2f}" for s in ("ingest", "clean", "curate", "quality", "release")) if stages else "-"
        lines.append(f"| {r['pages']:,} ({r['bytes_per_page'] / 1024:.1f} KB) | {r['full_seconds']} ({r['full_cpu_seconds']}) | {r['pages_per_second']:,.0f} "
                     f"| {r['cpu_ms_per_page']} | {r['full_peak_rss_mib']} | {(r['output_bytes'] or 0) / 2**20:.1f} | {per_stage} "
                     f"| {r['unchanged_seconds']} ({r['unchanged_share']:.0%}) | {r['changed_1pct_seconds']} ({r['changed_1pct_share']:.0%}) |")
        if "dask_seconds" in r:
            lines.append(f"| ... on Dask | {r['dask_seconds']} ({r['dask_cpu_seconds']}) | {r['pages'] / r['dask_seconds']:,.0f} | | "
                         f"{r['dask_peak_rss_mib']} | same release: {r['dask_same_release']} | | | |")
    if "small" in results:
        s = results["small"]
        lines.append(f"| {s['pages']:,} small synthetic pages | {s['seconds']} ({s['cpu_seconds']}) | {s['pages_per_second']:,.0f} "
                     f"| {1000 * s['cpu_seconds'] / s['pages']:.2f} | {s['peak_rss_mib']} | | | | |")
    if "warc" in results:
        w = results["warc"]
        lines += ["", "| HTML pages | as WARC records: s (CPU s), pages/s, peak MiB | as .html files: s (CPU s), pages/s, peak MiB | WARC unchanged re-run s (share) |",
                  "|---|---|---|---|",
                  f"| {w['pages']:,} | {w['warc_seconds']} ({w['warc_cpu_seconds']}), {w['warc_pages_per_second']}, {w['warc_peak_rss_mib']} "
                  f"| {w['files_seconds']} ({w['files_cpu_seconds']}), {w['files_pages_per_second']}, {w['files_peak_rss_mib']} "
                  f"| {w['unchanged_seconds']} ({w['unchanged_share']:.0%}) |"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
