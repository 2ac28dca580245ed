"""Benchmark: cleaning speed, then full, unchanged and 1%-changed runs on synthetic corpora.

    python -m commentary.bench [--sizes 1000,10000,100000] [--work .cache/bench] [--shared ../shared] [--cleaning-only]

Cleaning speed comes first (``tools.speed`` on the shared benchmark pages, one Polars
thread, a minute or less); ``--cleaning-only`` stops there.

Every run is a ``commentary run`` subprocess against one local Prefect server (started here),
measured from outside: wall time, CPU time (the run's process and the processes it waited for,
Dask workers included) and peak resident memory of the largest process. Per-stage
pages per second come from the run's ledger (pages / busy seconds of the stage). The seeds run
is a plain ``commentary run`` with its temporary Prefect server, as a user would start it.
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

from commentary import release, synthetic
from commentary.server import local_server

REPO = Path(__file__).resolve().parents[1]
COMMAND = [str(Path(sys.executable).with_name("commentary")), "run"]


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


def corpus(work: Path, pages: int, furniture: bool) -> Path:
    """The synthetic text corpus of ``pages`` pages, generated once."""
    raw = work / f"raw-{pages}{'' if furniture else '-plain'}"
    done = raw.with_name(raw.name + ".complete")  # beside the corpus: a file inside it would be a raw file too
    if not done.is_file():
        shutil.rmtree(raw, ignore_errors=True)
        synthetic.generate(raw, pages, furniture=furniture)
        done.write_text("")
    return raw


def bench_size(work: Path, pages: int, env: dict, furniture: bool = True) -> dict:
    raw = corpus(work, pages, furniture)
    curated = work / f"curated-{pages}"
    shutil.rmtree(curated, ignore_errors=True)
    base = ["--raw", str(raw), "--curated", str(curated)]
    full = measure(base, env)
    full_release = release.latest_version(curated)
    full_fingerprint = _fingerprint(curated)
    unchanged = measure(base, env)
    added = synthetic.generate(raw, max(1, pages // 100), start=pages, furniture=furniture)
    try:
        changed = measure(base, env)
    finally:
        for path in added:
            path.unlink()
    dask_curated = work / f"curated-{pages}-dask"
    shutil.rmtree(dask_curated, ignore_errors=True)
    dask = measure(["--raw", str(raw), "--curated", str(dask_curated), "--runner", "dask"], env)
    output_bytes = sum(f["bytes"] for f in release.read_manifest(curated, full_release)["files"].values()) if full_release else None
    stages = full["entry"]["timings"]["stages"]
    return {
        "pages": pages,
        "full_seconds": full["wall_seconds"], "full_cpu_seconds": full["cpu_seconds"], "full_peak_rss_mib": full["peak_rss_mib"],
        "pages_per_second": {name: s["pages_per_second"] for name, s in stages.items()},
        "output_bytes": output_bytes, "released": full["entry"]["released"], "release": full["entry"]["release"].get("version"),
        "unchanged_seconds": unchanged["wall_seconds"], "unchanged_share": round(unchanged["wall_seconds"] / full["wall_seconds"], 3),
        "unchanged_cpu_seconds": unchanged["cpu_seconds"], "unchanged_cpu_share": round(unchanged["cpu_seconds"] / full["cpu_seconds"], 3),
        "changed_1pct_seconds": changed["wall_seconds"], "changed_1pct_share": round(changed["wall_seconds"] / full["wall_seconds"], 3),
        "changed_1pct_cpu_seconds": changed["cpu_seconds"], "changed_1pct_cpu_share": round(changed["cpu_seconds"] / full["cpu_seconds"], 3),
        "dask_seconds": dask["wall_seconds"], "dask_cpu_seconds": dask["cpu_seconds"], "dask_peak_rss_mib": dask["peak_rss_mib"],
        "dask_same_release": full_fingerprint is not None and _fingerprint(dask_curated) == full_fingerprint,
    }


def _fingerprint(curated: Path) -> str | None:
    return release.read_manifest(curated)["content_fingerprint"] if release.latest_version(curated) else None


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
    parser = argparse.ArgumentParser(prog="python -m commentary.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench", help="corpora and outputs")
    parser.add_argument("--shared", type=Path, help="folder with benchmark/ (default: tools.speed's)")
    parser.add_argument("--cleaning-only", action="store_true", help="print the cleaning speed figures and stop")
    parser.add_argument("--no-furniture", dest="furniture", action="store_false",
                        help="pages without furniture (releases pass the quality gate whatever the cleaner)")
    args = parser.parse_args(argv)
    results = {"machine": _machine(), "date": time.strftime("%Y-%m-%d"), "cleaning": cleaning_speed(args.shared)}
    print("\n".join(results["cleaning"]), flush=True)
    if args.cleaning_only:
        return
    args.work.mkdir(parents=True, exist_ok=True)
    results.update(furniture=args.furniture, seeds=seeds_run(args.work), sizes=[])
    print(f"seeds end to end: {results['seeds']['seconds']} s, peak {results['seeds']['peak_rss_mib']} MiB", flush=True)
    with local_server(_free_port(), log=args.work / "server.log") as url:
        env = {**os.environ, "PREFECT_API_URL": url}
        for pages in map(int, args.sizes.split(",")):
            row = bench_size(args.work, pages, env, args.furniture)
            results["sizes"].append(row)
            print(json.dumps(row), flush=True)
    (args.work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))


def _machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").is_file() else "unknown CPU"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {model}, {memory:.0f} GiB RAM, Python {sys.version.split()[0]}"


def _table(results: dict) -> str:
    head = ("| pages | full s (CPU s) | peak MiB | output MiB | ingest p/s | clean p/s | curate p/s | quality p/s | release p/s "
            "| unchanged s (share) | unchanged CPU s (share) | +1% s (share) | +1% CPU s (share) | dask s (CPU s) | dask peak MiB | dask = local |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results["sizes"]:
        rate = r["pages_per_second"]
        lines.append(f"| {r['pages']:,} | {r['full_seconds']} ({r['full_cpu_seconds']}) | {r['full_peak_rss_mib']} | {(r['output_bytes'] or 0) / 2**20:.1f} | "
                     + " | ".join(f"{rate[s]:,.0f}" if rate.get(s) else "-" for s in ("ingest", "clean", "curate", "quality", "release"))
                     + f" | {r['unchanged_seconds']} ({r['unchanged_share']:.0%}) | {r['unchanged_cpu_seconds']} ({r['unchanged_cpu_share']:.0%})"
                     f" | {r['changed_1pct_seconds']} ({r['changed_1pct_share']:.0%}) | {r['changed_1pct_cpu_seconds']} ({r['changed_1pct_cpu_share']:.0%})"
                     f" | {r['dask_seconds']} ({r['dask_cpu_seconds']}) | {r['dask_peak_rss_mib']} | {r['dask_same_release']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
