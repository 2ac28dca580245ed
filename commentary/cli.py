"""Command line: run the pipeline (locally or on Dask), list, compare, verify and inspect releases."""
from __future__ import annotations

import argparse
import codecs
import errno
import json
import os
import re
import signal
import socket
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from commentary.settings import SHARD_SIZE, apply_environment_defaults

#: Exit codes (README "Exit codes"); sysexits.h values where one fits.
EXIT_OK = 0
#: The command did its work and found a problem in the data: a run ended without a release, ``verify`` found a mismatch.
EXIT_FAILED = 1
#: Wrong arguments: an unknown option, a raw folder that is missing or empty, a curated path that is a file.
EXIT_USAGE = 2
#: A service the run needs cannot be reached or refuses it: the object store of ``--raw`` or ``--mirror``, the Dask
#: scheduler, the Prefect API.
EXIT_UNAVAILABLE = 69
#: An error of the program itself (a bug): ``--debug`` shows its traceback.
EXIT_SOFTWARE = 70
#: The curated folder cannot be written (read-only, permission denied).
EXIT_CANNOT_WRITE = 73
EXIT_DISK_FULL = 74
#: Another run holds the curated folder: try again later.
EXIT_LOCKED = 75


def _count(value: str) -> int:
    """An argument that counts something: a whole number of at least 0."""
    if not (value.strip().isascii() and value.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 0")
    return int(value)


#: Embeddings, overrides and isolates of the direction of text (U+202A-U+202E, U+2066-U+2069), kept in the release:
#: right-to-left text may need them.
_DIRECTION_OVERRIDES = re.compile("[\u202a-\u202e\u2066-\u2069]")


class UserError(Exception):
    """A problem the user can fix, told in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def in_utf8_mode() -> None:
    """Run this command again, as it was started, in Python's UTF-8 mode (``PYTHONUTF8=1``, inherited by its processes)
    when the locale names files in another encoding (Latin-1, ASCII), so that file names are read as the same UTF-8
    bytes, and get the same ``doc_id``, whatever the locale."""
    if not sys.flags.utf8_mode and codecs.lookup(sys.getfilesystemencoding()).name != "utf-8":
        os.execve(sys.executable, [sys.executable, "-X", "utf8", *map(os.fsencode, sys.orig_argv[1:])], {**os.environ, "PYTHONUTF8": "1"})


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        in_utf8_mode()
    parser = argparse.ArgumentParser(prog="commentary", description=__doc__, epilog=EXIT_CODES_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline on a raw folder and publish a release")
    run.add_argument("--raw", default="raw", help="raw landing folder: a path or an fsspec URL such as s3://bucket/raw (default: raw)")
    run.add_argument("--mirror", help="fsspec URL to copy each published release to (e.g. s3://bucket/curated), LATEST last")
    run.add_argument("--shard-size", type=int, default=SHARD_SIZE, help=f"documents per shard (default: {SHARD_SIZE})")
    run.add_argument("--inline", action="store_true", help="run every step in this process, without Prefect (small folders, debugging)")
    run.add_argument("--runner", choices=("local", "dask"), default="local",
                     help="run shards on local threads or on a Dask cluster (default: local)")
    run.add_argument("--scheduler", help="with --runner dask: address of an existing Dask scheduler "
                                         "(default: start a LocalCluster)")
    run.add_argument("--json", action="store_true", help="print the run's ledger as JSON on stdout instead of the summary")
    commands.add_parser("releases", help="list the releases with their counts")
    listing = commands.add_parser("list", help="the articles of a release: id, date, outlet, title")
    listing.add_argument("--version", default="latest", help="release to read (default: latest)")
    listing.add_argument("--duplicates", action="store_true", help="list duplicate copies too")
    diff = commands.add_parser("diff", help="what changed between two releases")
    diff.add_argument("old", help="the earlier version")
    diff.add_argument("new", nargs="?", default="latest", help="the later version (default: latest)")
    diff.add_argument("--limit", type=_count, default=50, help="changed articles listed (default: 50)")
    verify = commands.add_parser("verify", help="check release files against their manifest checksums")
    verify.add_argument("version", nargs="?", help="one version (default: every release)")
    show = commands.add_parser("show", help="one article of a release: fields, furniture, copies, history")
    show.add_argument("doc_id", help="a doc_id, a unique prefix of one, or a source_path")
    show.add_argument("--version", default="latest", help="release to read (default: latest)")
    for command in commands.choices.values():
        command.add_argument("--curated", default=os.environ.get("COMMENTARY_CURATED") or "curated",
                             help="curated output folder (default: $COMMENTARY_CURATED, else curated)")
        command.add_argument("--debug", action="store_true", help="show the traceback of an error (and Prefect's log on the terminal)")
    args = parser.parse_args(argv)
    try:
        status = _dispatch(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader left early (``commentary show ID | head``): stop quietly, with the status a
        # shell gives a program killed by SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}   done
  {EXIT_FAILED}   done, and a problem found: a run published nothing or a quality check raised (see its summary), verify found a mismatch,
      releases found a release whose manifest is missing or incomplete, list, show or diff found a release file that cannot be read
  {EXIT_USAGE}   wrong arguments (missing or empty raw folder, an empty option, curated path that is a file or inside raw, a URL of
      no known file system, unknown release or article); the latest release does not match its manifest (see verify)
  {EXIT_UNAVAILABLE}  a service the run needs cannot be reached or refuses it (object store, Dask scheduler, Prefect API): the message
      names it, what to check and whether anything was published
  {EXIT_SOFTWARE}  an error of the program: rerun with --debug and report the traceback
  {EXIT_CANNOT_WRITE}  the curated folder cannot be written (read-only, permission denied), or the raw folder cannot be read
  {EXIT_DISK_FULL}  the disk filled up during the run; nothing was published (unless the message says otherwise)
  {EXIT_LOCKED}  another run is using the curated folder; try again when it has finished
  130 interrupted (Ctrl-C)"""


def _dispatch(args) -> int:
    """Run the command; a user's error becomes one line on stderr and its exit code, a traceback only with ``--debug``."""
    try:
        refuse_empty(**{option: getattr(args, option, None) for option in ("curated", "raw", "mirror")})
        if args.command == "run":
            refuse_bad_environment()
            return _run(args)
        return _read_release(args)
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        print(f"commentary {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Exception as error:  # noqa: BLE001 - every error ends as one line unless --debug asks for the traceback
        if args.debug:
            raise
        code, message = _explain(error)
        print(f"commentary {args.command}: {message}", file=sys.stderr)
        return code


def _read_release(args) -> int:
    """Run a command that reads releases; a release file that cannot be read (changed or cut by hand) is a problem of
    the data, told in one line (exit 1), not an error of the program."""
    import polars as pl
    import pyarrow as pa

    command = {"releases": _releases, "list": _list, "diff": _diff, "verify": _verify, "show": _show}[args.command]
    try:
        return command(Path(args.curated), args)
    except (pl.exceptions.PolarsError, pa.ArrowException) as error:
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise UserError(f"a file of the release cannot be read ({first_line}); `commentary verify` names the damaged files",
                        EXIT_FAILED) from error


def _explain(error: Exception) -> tuple[int, str]:
    """The exit code and the one-line message of an error."""
    from concurrent.futures.process import BrokenProcessPool

    from commentary.locking import RunLocked
    from commentary.reader import NoRelease
    from commentary.release.publish import BaseReleaseDamaged
    from commentary.tables import DiskFull

    if isinstance(error, UserError):
        return error.code, str(error)
    if isinstance(error, RunLocked):
        return EXIT_LOCKED, str(error)
    if isinstance(error, DiskFull):
        return EXIT_DISK_FULL, f"{error}; free some space and run again"
    if isinstance(error, PermissionError):
        return EXIT_CANNOT_WRITE, f"permission denied: {error.filename or error}; check who owns the folder"
    if isinstance(error, OSError) and error.errno == errno.EROFS:
        return EXIT_CANNOT_WRITE, f"read-only file system: {error.filename or error}; choose another folder or remount it"
    if isinstance(error, (NoRelease, BaseReleaseDamaged)):
        return EXIT_USAGE, str(error)
    if isinstance(error, BrokenProcessPool):
        return EXIT_SOFTWARE, ("a process of the run died (killed by a signal: the system's out-of-memory killer?); "
                               "run again (a release is published whole or not at all: `commentary releases` shows the latest)")
    first_line = (str(error).strip().splitlines() or [""])[0]
    return EXIT_SOFTWARE, f"internal error ({type(error).__name__}: {first_line}); rerun with --debug to see the traceback"


#: Codes of botocore's ClientError for an object store that refuses the credentials it was given.
_ACCESS_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
#: Error numbers of a connection that failed.
_CONNECTION_FAILED = (errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT)


def _unavailable(error: Exception, args) -> str | None:
    """The service that a run's error says cannot be reached or refuses the run, named with its URL or address, and
    what to check: the object store of ``--raw`` or ``--mirror`` (botocore, the client of s3fs), the Dask scheduler at
    ``--scheduler``, the Prefect API (httpx). None for any other error: the error, or one it was raised from or while
    handling, must be one of these clients' own (a TimeoutError of the program stays an error of the program)."""
    import httpx

    stores = " and ".join(url for url in (args.raw, args.mirror) if url and "://" in url and not url.startswith("file://"))
    botocore = sys.modules.get("botocore.exceptions") if stores else None  # s3fs's client, imported by s3fs (no dependency)
    for cause in _chain(error):
        if botocore and isinstance(cause, botocore.NoCredentialsError):
            return (f"the object store of {stores} was given no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "or AWS_PROFILE")
        if botocore and isinstance(cause, botocore.ClientError) and (
                code := cause.response.get("Error", {}).get("Code")) in _ACCESS_DENIED:
            return f"the object store of {stores} refused the credentials ({code}): check them and the bucket's permissions"
        if botocore and isinstance(cause, botocore.ConnectionError):
            endpoint = urlsplit(cause.kwargs.get("endpoint_url", ""))
            at = f" at {endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else ""
            return (f"the object store of {stores}{at} cannot be reached ({_why(cause)}): check the endpoint URL (AWS_ENDPOINT_URL) "
                    "and the network")
        if args.scheduler and isinstance(cause, OSError) and _raised_in(cause, "distributed"):
            return f"the Dask scheduler at {args.scheduler} cannot be reached ({_why(cause)}): check that it is running at that address"
        if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout)):
            url = cause.request.url
            return (f"the Prefect API at {url.scheme}://{url.netloc.decode()} cannot be reached ({_why(cause)}): check that its "
                    "server is running (PREFECT_API_URL; without it, the run starts its own)")
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then the error it was raised from or while handling, and so on."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _raised_in(error: BaseException, package: str) -> bool:
    """Whether the code that raised ``error`` (its traceback's innermost frame) belongs to ``package``."""
    frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
    module = frames[-1].f_globals.get("__name__", "") if frames else ""
    return module == package or module.startswith(f"{package}.")


def _why(error: BaseException) -> str:
    """How a connection failed, as the first error of the chain that tells: a host name not resolved, an OS error
    (connection refused, no route to host); else the error's first line."""
    for cause in _chain(error):
        if isinstance(cause, socket.gaierror):
            return f"host name not resolved: {cause.strerror}"
        if isinstance(cause, OSError) and cause.errno in _CONNECTION_FAILED:
            return os.strerror(cause.errno).lower()
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _latest(curated: Path) -> str | None:
    """The version ``curated``'s LATEST names; None when it names none or cannot be read."""
    from commentary.reader import latest_version

    try:
        return latest_version(curated)
    except OSError:  # NoRelease too
        return None


def _published(curated: Path, before: str | None, mirror: str | None) -> str:
    """Whether a run that failed published a release: ``curated``'s LATEST now against ``before``, what it held before the run."""
    now = _latest(curated)
    if now == before:
        return f"nothing was published, LATEST is still {before}" if before else "nothing was published"
    return f"release {now} was published" + ("; the next run brings the mirror up to it" if mirror else "")


def refuse_bad_environment() -> None:
    """Raise UserError naming each environment variable whose value a setting could not use."""
    from commentary.settings import ENVIRONMENT_PROBLEMS

    if ENVIRONMENT_PROBLEMS:
        raise UserError("; ".join(ENVIRONMENT_PROBLEMS))


def refuse_empty(**folders: str | None) -> None:
    """Raise UserError for a folder option given as an empty string (an unset variable), which would name the current folder."""
    for option, value in folders.items():
        if value is not None and not value.strip():
            raise UserError(f"--{option} is empty: pass a folder (is a variable of the command unset?)")


def check_run_arguments(raw: str, curated: str, shard_size: int, mirror: str | None = None) -> None:
    """Raise UserError for arguments a run cannot start with; creates nothing.

    ``raw`` must be a folder holding at least one file (a URL must name a folder); ``curated``
    must be a folder, or a path one can be created at, that this process can write, and must not
    lie inside ``raw`` (the next run would read the releases as raw pages); nor must ``mirror``, whose
    URL must name a file system that fsspec has.
    """
    import fsspec

    from commentary.ingest import is_utf8, shown_name
    from commentary.runfolder import CuratedFolder
    from commentary.storage import raw_folder

    if shard_size < 1:
        raise UserError(f"--shard-size must be at least 1, not {shard_size}")
    for option, location in (("--raw", raw), ("--mirror", mirror)):
        if location is not None and "://" in location:
            try:
                fsspec.core.url_to_fs(location)
            except (ValueError, ImportError) as error:
                raise UserError(f"{option} {location} names no file system that can be used: {error}") from error
    root = raw_folder(raw)
    if not isinstance(root, Path):
        if not root.is_dir():
            raise UserError(f"raw folder {raw} does not exist or is not a folder: check the URL and the credentials")
        if not root.holds_files():
            raise UserError(f"raw folder {raw} holds no files: put .txt or .html pages (optionally .gz) in it")
    elif not root.exists():
        raise UserError(f"raw folder {raw} does not exist: create it and put the pages in it, or pass --raw DIR")
    elif not root.is_dir():
        raise UserError(f"--raw {raw} is a file: pass the folder that holds the pages")
    elif not os.access(root, os.R_OK | os.X_OK):
        raise UserError(f"raw folder {raw} cannot be read (permission denied)", EXIT_CANNOT_WRITE)
    elif not any(files for _, _, files in os.walk(root)):
        raise UserError(f"raw folder {raw} holds no files: put .txt or .html pages (optionally .gz) in it")
    for option, location in (("--curated", curated), ("--mirror", mirror)):
        if location is not None and "://" not in location and not is_utf8(location):
            raise UserError(f"{option} {shown_name(location)} is not a UTF-8 name, which the release's files need: choose a folder whose name is")
    target = Path(curated)
    if target.exists() and not target.is_dir():
        raise UserError(f"--curated {curated} is a file: pass a folder (it is created if missing)")
    if dangling := next((folder for folder in (target, *target.absolute().parents) if folder.is_symlink() and not folder.exists()), None):
        raise UserError(f"--curated {curated} cannot be created: {dangling} is a link to {os.readlink(dangling)}, which does not exist")
    if CuratedFolder(target).inside(root) is not None:
        raise UserError(f"--curated {curated} lies inside the raw folder {raw}: the next run would read the releases as raw pages; "
                        "choose a folder outside it")
    if mirror is not None:
        copy = raw_folder(mirror)
        if isinstance(copy, Path) and CuratedFolder(copy).inside(root) is not None:
            raise UserError(f"--mirror {mirror} lies inside the raw folder {raw}: the next run would read the releases as raw pages; "
                            "choose a folder outside it")
    existing = next(folder for folder in (target, *target.absolute().parents) if folder.exists())
    if not existing.is_dir():
        raise UserError(f"--curated {curated} cannot be created: {existing} is a file")
    if not _writable(existing):
        where = "" if existing == target else f" ({existing} is where it would be created)"
        raise UserError(f"curated folder {curated} cannot be written{where}: choose another with --curated DIR or fix its permissions",
                        EXIT_CANNOT_WRITE)


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (read-only file systems and permissions, as the kernel sees them)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _run(args) -> int:
    if args.runner == "dask" and args.inline:
        raise UserError("--runner dask runs the shards through Prefect: leave out --inline")
    if args.scheduler and args.runner != "dask":
        raise UserError("--scheduler is the address of a Dask scheduler: add --runner dask")
    latest = _latest(Path(args.curated))
    try:
        entry = _pipeline(args)
    except Exception as error:
        if (failure := _unavailable(error, args)) is None:
            raise
        raise UserError(f"{failure}; {_published(Path(args.curated), latest, args.mirror)}", EXIT_UNAVAILABLE) from error
    from commentary.ledger import ReleaseOutcome
    from commentary.progress import quality_errors, summary
    from commentary.runfolder import CuratedFolder

    if args.json:
        print(json.dumps(entry, indent=2, default=str))
    else:
        print(summary(entry, Path(args.curated)))
    if quality_errors(CuratedFolder(Path(args.curated)).run(entry["run_id"])):
        return EXIT_FAILED  # a check that raised is an error of the check: never a quiet success
    return EXIT_OK if ReleaseOutcome.from_record(entry["release"]).current else EXIT_FAILED


def _pipeline(args) -> dict:
    """Check the run's arguments and run the pipeline (inline, or as the Prefect flow); returns the run's ledger entry."""
    check_run_arguments(args.raw, args.curated, args.shard_size, args.mirror)
    # Errors are told in one line by ``_dispatch``; Prefect's log stays in its UI, and comes to the terminal with --debug.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if args.debug else "CRITICAL")
    apply_environment_defaults()  # before Arrow allocates: it picks its memory pool once
    from contextlib import ExitStack

    from commentary.locking import check_unlocked

    check_unlocked(Path(args.curated))  # a held lock is told in one line before Prefect starts
    with ExitStack() as stack:
        if not args.inline:  # the temporary API server starts up while this process imports the flow
            from flows.api_server import start_api_server
            server = start_api_server(stack)
        from commentary.steps import run as run_inline
        from commentary.storage import raw_folder

        if args.inline:
            entry = run_inline(raw_folder(args.raw), Path(args.curated), args.shard_size, args.mirror)
        else:
            from flows.api_server import use_api_server
            from flows.pipeline import ledger_entry, with_runner

            use_api_server(stack, server)
            pipeline = with_runner(args.runner, args.scheduler)
            entry = ledger_entry(pipeline(raw=args.raw, curated=args.curated, shard_size=args.shard_size, mirror=args.mirror,
                                          return_state=True))
    return entry


def _releases(curated: Path, args) -> int:
    from commentary import reader
    from commentary.release import versions

    manifests = reader.list_releases(curated)
    damaged = reader.damaged_releases(curated, manifests)
    if not manifests and not damaged:
        raise reader.NoRelease(f"no release in {curated}")
    try:
        latest, unreadable = reader.latest_version(curated), None
    except reader.NoRelease as error:  # the releases are still listed, to tell which version LATEST should name
        latest, unreadable = None, error
    rows = [("version", "created", "change", "articles", "canonical", "duplicates", "added", "removed", "modified")]
    for m in reversed(manifests):
        try:
            changes = m["changes"]["articles"]
            rows.append((m["version"] + (" (latest)" if m["version"] == latest else ""), m["created_at"][:16].replace("T", " "),
                         m["changes"]["bump"] if m["previous_version"] else "first",
                         *(str(m["counts"][k]) for k in ("articles", "canonical_articles", "duplicates")),
                         *(str(changes[k]) for k in ("added", "removed", "modified"))))
        except (KeyError, TypeError, AttributeError):
            damaged.append(m["version"])
    print(_table(rows))
    if unreadable:
        print(f"commentary releases: {unreadable}", file=sys.stderr)
    for version in sorted(damaged, key=versions.parse_version):
        print(f"commentary releases: {version}: its manifest is missing, unreadable or incomplete; see commentary verify {version}",
              file=sys.stderr)
    return 1 if damaged or unreadable else 0


def _diff(curated: Path, args) -> int:
    from commentary import reader
    from commentary.release import notes, versions
    from commentary.tables import RELEASE_TABLES

    old_folder, new_folder = reader.release_path(curated, args.old), reader.release_path(curated, args.new)
    old, new = ({t: RELEASE_TABLES[t].in_release(folder) for t in versions.COMPARED_TABLES} for folder in (old_folder, new_folder))
    result = versions.diff(*({t: versions.hash_table(files) for t, files in side.items()} for side in (old, new)))
    print(f"{old_folder.name} -> {new_folder.name}: {result.bump or 'no'} change")
    print(notes.describe(result, new["articles"].scan(), old["articles"].scan(), limit=args.limit), end="")
    return 0


def _verify(curated: Path, args) -> int:
    from commentary import reader

    found = {args.version: reader.verify(curated, args.version)} if args.version else reader.verify_all(curated)
    for name, problems in found.items():
        print("\n".join(f"FAIL {problem}" for problem in problems) if problems
              else f"ok   {name}: " + ("names an intact release, which the latest link leads to" if name == "LATEST" else "every file matches its manifest checksum"))
    return 1 if any(found.values()) else 0


def _find_article(articles, wanted: str, version: str) -> dict:
    """The article whose ``doc_id`` or ``source_path`` is ``wanted``, or whose ``doc_id`` starts with it (one only)."""
    import polars as pl

    found = articles.filter((pl.col("doc_id") == wanted) | (pl.col("source_path") == wanted)).collect()
    if not found.height:
        found = articles.filter(pl.col("doc_id").str.starts_with(wanted)).collect()
    if found.height > 1:
        ids = ", ".join(sorted(found["doc_id"])[:5])
        raise UserError(f"{wanted} is the start of {found.height} doc_ids in release {version} ({ids}, ...): give more of it")
    if not found.height:
        raise UserError(f"no article {wanted} in release {version} (neither a doc_id, a start of one, nor a source_path); "
                        "`commentary list` shows them")
    return found.row(0, named=True)


def _list(curated: Path, args) -> int:
    import polars as pl

    from commentary import reader

    version = reader.release_path(curated, args.version).name
    articles = reader.scan_table(curated, "articles", version)
    if not args.duplicates:
        articles = articles.filter(pl.col("duplicate_of").is_null())
    rows = articles.select("doc_id", "published_date", "outlet", "title").sort("published_date", "doc_id", nulls_last=True).collect()
    print(_shown(_table([("doc_id", "date", "outlet", "title")] +
                        [(doc_id, date or "-", outlet or "-", (title or "-")[:80]) for doc_id, date, outlet, title in rows.iter_rows()])))
    return EXIT_OK


def _show(curated: Path, args) -> int:
    import polars as pl

    from commentary import reader

    version = reader.release_path(curated, args.version).name
    articles = reader.scan_table(curated, "articles", version)
    row = _find_article(articles, args.doc_id, version)
    doc_id = row["doc_id"]
    print(f"{doc_id} in release {version}")
    for name, value in row.items():
        if name != "body":
            print(_shown(f"  {name:16} {value}"))
    copies = articles.filter(pl.col("duplicate_of") == doc_id).select("doc_id", "source_path").collect()
    for copy_id, source_path in copies.iter_rows():
        print(f"  copy             {copy_id} {source_path}")
    furniture = reader.scan_table(curated, "furniture", version).filter(pl.col("doc_id") == doc_id).sort("line_no").collect()
    print(f"\nfurniture removed ({furniture.height} lines):")
    for line_no, category, rule_id, text in furniture.select("line_no", "category", "rule_id", "text").iter_rows():
        print(_shown(f"  {line_no:5} {category:12} {rule_id:28} {text[:80]}"))
    print("\nhistory:")
    for manifest in reader.list_releases(curated):
        change = reader.scan_table(curated, "changes", manifest["version"]).filter(pl.col("doc_id") == doc_id).collect()
        if change.height:
            fields = ", ".join(change["changed_fields"][0])
            print(f"  {manifest['version']:8} {change['change'][0]}" + (f" ({fields})" if fields else ""))
    print(_shown(f"\nbody ({row['word_count']} words):\n{row['body']}"))
    return 0


def _shown(text: str) -> str:
    """``text`` for the terminal: without control characters, which a release made from older code may hold (an ANSI
    escape in a page's title would act on the terminal), nor the marks that override the direction of the text after
    them (``_DIRECTION_OVERRIDES``: they would reverse the rest of the terminal's line)."""
    from commentary.ingest import valid_text

    return _DIRECTION_OVERRIDES.sub("", valid_text(text))


def _table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows)


if __name__ == "__main__":
    sys.exit(main())
