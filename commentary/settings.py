"""Runtime defaults and limits, in one place.

Numbers here are documented in README.md ("Limits"); change them there too.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

#: Documents per shard: one Prefect task per stage per shard (Prefect spends 5-50 ms on each task run).
SHARD_SIZE = 500
#: Shards whose ``doc_id`` ranges may overlap at any one point before a run lays every shard out
#: afresh (``cache.lay_out``); the release merges that many shards at once (memory: this times a shard).
MAX_OVERLAPPING_SHARDS = 16
#: Environment variables whose values a setting could not use (``_seconds_from_environment``): ``commentary run`` and
#: ``make serve`` name them and stop before they start; meanwhile the default is in use, so importing the package works.
ENVIRONMENT_PROBLEMS: list[str] = []


def _seconds_from_environment(variable: str, default: float) -> float:
    """The seconds that ``variable`` sets (a finite number, 0 or more), else ``default``."""
    value = os.environ.get(variable)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        ENVIRONMENT_PROBLEMS.append(f"${variable} must be a number of seconds, 0 or more, not {value!r}")
        return default
    return seconds


#: A raw file changed less than this long before a run stamped it is read again by the next run:
#: longer than a timestamp tick (2 s on FAT and some network file systems, far less on ext4 or XFS).
STAMP_SETTLE_SECONDS = 2
#: A raw file (or its sidecar) modified less than this long before it is read may still be being
#: written: it is rejected ``still-being-written`` and read by a later run (a file an earlier run read keeps
#: that version meanwhile: repair ``earlier-version-kept``). The environment variable
#: COMMENTARY_MIN_FILE_AGE_SECONDS overrides it (the test suite sets 0: its files are fresh).
MIN_FILE_AGE_SECONDS = _seconds_from_environment("COMMENTARY_MIN_FILE_AGE_SECONDS", 5.0)
#: Years of a publication date on a page (in a sidecar, which an operator writes, from MIN_SIDECAR_YEAR): an earlier or
#: later one is a placeholder (0001-01-01, 9999-12-31) or a typing error. Fixed, so that no date depends on the day of
#: the run; a WARC record's dates are also bounded by the day after its fetch (``stages._article``).
MIN_PLAUSIBLE_YEAR = 1990
MIN_SIDECAR_YEAR = 1900
MAX_PLAUSIBLE_YEAR = 2099
#: A field's value (or an item of a list field) of more characters than this, or a list field of more items, is no
#: value: a whole page in a title tag, thousands of keywords. The next source's value is taken (repair
#: ``metadata-dropped``). On the 1,196 benchmark and pool pages the longest value has 532 characters (an author bio)
#: and the longest list 114 items (tags).
MAX_FIELD_CHARS = 5_000
MAX_FIELD_ITEMS = 500
#: HTML pages of more decoded characters than this are rejected ``too-costly`` before they are parsed:
#: parsing costs about 55 bytes of memory per character (a 27 MiB one-line page took 1.5 GB and 42 s).
MAX_HTML_CHARS = 4 * 1024 * 1024
#: Text files of more lines than this are rejected ``too-costly`` before they are cleaned: the line table costs about
#: 1.3 KB of memory per line (8 M one-word lines took 10 GB). The longest real page met (benchmark and pool, flattened
#: a text node a line) has 9,495 lines.
MAX_TEXT_LINES = 50_000
#: HTML pages of more decoded characters than this are extracted in a process of their own, stopped after
#: HTML_TIMEOUT_SECONDS and then rejected ``too-costly``; smaller pages are extracted in the shard's process.
#: The largest real page met (benchmark and pool) has 1.6 M characters and takes 0.8 CPU s; the costliest
#: shape measured, one line of tiny paragraphs, takes 25 CPU s and 800 MB at 2 Mi characters.
HTML_ISOLATE_CHARS = 2 * 1024 * 1024
HTML_TIMEOUT_SECONDS = 30.0
#: Raw files larger than this are rejected unread (bytes on disk).
MAX_RAW_BYTES = 32 * 1024 * 1024
#: Decompressed gzip content is capped here (guards against gzip bombs).
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
#: Lines longer than this are cut to this length before cleaning (one enormous line stays bounded).
MAX_LINE_CHARS = 100_000
#: Sidecars larger than this are rejected unread; real ones are a few hundred bytes.
MAX_SIDECAR_BYTES = 64 * 1024
#: Decoded text with a larger share of control characters or U+FFFD is binary, not text
#: (text has next to none; random bytes decoded as cp1252 give about 13 %).
MAX_CONTROL_SHARE = 0.05
#: Articles that fail a per-row critical expectation are quarantined (rejected at stage ``quality``)
#: and the others released; more than this share of a run's articles failing holds the whole release
#: (a fault of the batch, such as a broken rule or extractor, not of a few pages).
MAX_QUARANTINED_SHARE = 0.05
#: ... and at least this many of them: one or two bad pages never hold a release, however small the run.
MIN_QUARANTINED_TO_HOLD = 3
#: Run folders (``<curated>/runs/<run_id>``) kept; older ones are removed when a run starts, except the
#: cached run and the run of the LATEST release. A run folder is mostly hard links to earlier runs' shards.
KEEP_RUNS = 20
#: A page is no article (README "Rejected pages"): its cleaned body has fewer words than this
#: (the shortest gold bodies of the benchmark and pool have 11); or it has at most this many words and
#: says it is a block, challenge, error or redirect page in a line of at most this many words (a heading, a title, not a
#: sentence of prose that quotes the message), or is a redirect page (an HTML ``meta`` refresh to another address);
#: or this share of its characters is markup or data, and of its body's lines.
MIN_BODY_WORDS = 10
BLOCK_PAGE_MAX_WORDS = 200
BLOCK_PAGE_LINE_MAX_WORDS = 15
MARKUP_MIN_SHARE = 0.5
#: ... a redirect's refresh comes within this many seconds (a later one reloads a live page).
REDIRECT_MAX_SECONDS = 10
#: ... or it is a file of another text format: delimited data (among its first DATA_MAX_LINES_READ non-blank lines,
#: at least this many records, this share of them rows of as many fields, at least this many, split by one delimiter
#: without a space after it, one field a single token in as many), subtitles (at least this many cue timings
#: ``00:01:02,500 --> 00:01:04,000``, and this share of the non-blank lines: a SubRip cue of three lines of text is a
#: fifth timing, a tutorial quoting a few cues less), or mail with its headers.
DATA_MAX_LINES_READ = 1000
DATA_MIN_ROWS = 5
DATA_MIN_FIELDS = 3
DATA_MIN_ROW_SHARE = 0.8
SUBTITLE_MIN_CUES = 3
SUBTITLE_MIN_CUE_SHARE = 0.2
#: An HTML page is a listing or index page (``not-an-article``) when its extracted text holds fewer than
#: ``LISTING_MAX_PROSE_BLOCKS`` prose blocks (a line of ``LISTING_PROSE_MIN_WORDS`` words or more ending a
#: sentence) and at least ``LISTING_MIN_LINK_SHARE`` of the words of the page's body and of that text lie
#: in links, of those that can be measured (a short post on a blog with a long link sidebar is released: its
#: own text is no link list; so is a short article that a malformed page leaves outside any body).
LISTING_PROSE_MIN_WORDS = 12
LISTING_MAX_PROSE_BLOCKS = 3
LISTING_MIN_LINK_SHARE = 0.5
#: Processes that run the shard steps, one shard at a time each: the local runner's shard processes, or
#: the worker processes (one thread each) of the Dask LocalCluster started by ``--runner dask``. Threads
#: of one process would share its GIL (the cleaner's page assembly, the ingest decoder and the field
#: merge are Python), and two cores would not be kept busy.
WORKER_PROCESSES = os.cpu_count() or 1
#: Polars threads in each of those processes: its share of the cores (Polars otherwise starts one thread
#: per core in every process, and the processes compete for the same cores).
WORKER_POLARS_THREADS = max(1, (os.cpu_count() or 1) // WORKER_PROCESSES)
#: How each shard process keeps the memory it frees, to reuse it for its next shard instead of handing it back to the
#: system and faulting it in again (about 100 page faults per page otherwise: 0.3-0.4 CPU ms/page of system time).
#: Polars' allocator (jemalloc, configured by this variable before Polars is imported) keeps freed pages for 30 s;
#: glibc's malloc (Python, NumPy; ``mallopt``) serves blocks up to 256 MiB from its heap instead of a mapping each,
#: grows the heap 64 MiB at a time and gives it back only beyond 1 GiB free. A shard process peaks about 150 MiB higher.
SHARD_ALLOCATOR_ENVIRONMENT = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:30000,muzzy_decay_ms:30000"}
SHARD_MALLOC_OPTIONS = {"M_MMAP_THRESHOLD": 256 * 1024 * 1024, "M_TOP_PAD": 64 * 1024 * 1024, "M_TRIM_THRESHOLD": 1024 * 1024 * 1024}
#: Threads of the local task runner: shard tasks in flight at once. Each waits for its shard process;
#: those beyond WORKER_PROCESSES are queued, so that a process never waits for its next shard.
LOCAL_THREADS = 2 * WORKER_PROCESSES
#: Rows per Parquet row group in the run's stage shards (a shard is one row group).
ROW_GROUP_ROWS = 10_000
#: Release files are sized in uncompressed Arrow bytes (README "Release files"): a row group takes
#: blocks of ROW_STEP rows while it stays within 64 MiB (about 12,000 articles of 5.5 KB), the unit a
#: reader decodes and DuckDB parallelises over; a part file of 512 MiB (8 groups) is about 200 MiB
#: with zstd, so it downloads and opens in one piece.
ROW_STEP = 1000
ROW_GROUP_BYTES = 64 * 1024 * 1024
PART_FILE_BYTES = 512 * 1024 * 1024
#: Near duplicates: word 5-gram shingles, 128 MinHash permutations (about 0.2 ms per article), and an
#: estimated Jaccard similarity of at least 0.7. A syndicated copy with a line of credit added or a
#: closing paragraph cut scores 0.85-0.98; different pieces on one topic share few 5-grams (< 0.1).
SHINGLE_WORDS = 5
MINHASH_PERMUTATIONS = 128
NEAR_DUPLICATE_THRESHOLD = 0.7
#: LSH banding for that threshold: 14 bands of 9 values, the optimum datasketch's MinHashLSH computes
#: for 0.7 and 128 permutations (equal weights on false positives and false negatives).
LSH_BANDS, LSH_ROWS = 14, 9


def apply_environment_defaults(home: Path | None = None) -> None:
    """Set project-local Prefect, Great Expectations and Dask defaults unless the user set them: their folders in
    ``home`` (the current folder), else in the user's home folder when ``home`` cannot be written (a job run from
    ``/``)."""
    home = (home or Path.cwd()).resolve()
    if "PREFECT_HOME" not in os.environ:
        home = _writable(home, Path.home())
    defaults = {
        "PREFECT_HOME": str(home / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        # The flow's progress and summary reach the run's log in the UI; the terminal shows warnings only.
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "DASK_TEMPORARY_DIRECTORY": str(home / ".cache" / "dask"),
        # Arrow's jemalloc gives freed memory back within a second; its default, mimalloc, keeps it:
        # writing a release peaked about 80 MiB higher with it (docs/PERFORMANCE.md, "What changed on 2026-11-27").
        "ARROW_DEFAULT_MEMORY_POOL": "jemalloc",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


def _writable(*folders: Path) -> Path:
    """The first of ``folders`` in which a ``.prefect`` folder exists or can be made (the last one otherwise)."""
    for folder in folders:
        try:
            (folder / ".prefect").mkdir(exist_ok=True)
            return folder
        except OSError:
            continue
    return folders[-1]
