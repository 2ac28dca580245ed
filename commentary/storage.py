"""Raw folders and release mirrors beyond the local disk, through fsspec URLs.

``raw`` is a local folder (a path or a ``file://`` URL, read with the operating system so that
symbolic links and special files are checked) or any other fsspec URL (``memory://``, ``s3://``
with s3fs installed, ``gs://`` with gcsfs, ``az://`` with adlfs), listed and read through its
filesystem. ``curated`` stays a local folder (the run lock, atomic renames and the cache need a
POSIX file system); a published release can be mirrored to any fsspec URL (``mirror``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import fsspec

from commentary.release.manifest import MANIFEST


@dataclass(frozen=True)
class RemoteFolder:
    """A raw folder behind an fsspec URL; only the URL is kept, so it pickles to other processes."""

    url: str

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.core.url_to_fs(self.url)[0]

    def path(self, rel_path: str = "") -> str:
        """The filesystem path of ``rel_path`` (forward slashes) below the folder."""
        root = fsspec.core.url_to_fs(self.url)[1].rstrip("/")
        return f"{root}/{rel_path}" if rel_path else root

    @property
    def process_local(self) -> bool:
        """Whether the folder lives in this process's memory (``memory://``), where other processes do not see it."""
        from fsspec.implementations.memory import MemoryFileSystem

        return isinstance(self.fs, MemoryFileSystem)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path())

    def holds_files(self) -> bool:
        """Whether any file lies below the folder, listed a folder at a time until one is found."""
        return any(any(not name.endswith("/") for name in files) for _, _, files in self.fs.walk(self.path()))

    def files(self) -> list[str]:
        """Relative paths of every file below the folder, sorted; the empty keys that stand for folders in an object
        store ("Create folder" in the S3 console writes ``sub/``) are none."""
        root = self.path()
        return sorted(path[len(root) + 1:] for path, info in self.fs.find(root, detail=True).items()
                      if path.startswith(root + "/") and not path.endswith("/") and info.get("type") != "directory")

    def __str__(self) -> str:
        return self.url


def raw_folder(location: str | Path) -> Path | RemoteFolder:
    """A raw folder: a local path (also from a ``file://`` URL) or a RemoteFolder for any other URL."""
    text = str(location)
    if "://" not in text:
        return Path(text)
    if text.startswith("file://"):
        return Path(fsspec.core.url_to_fs(text)[1])
    return RemoteFolder(text.rstrip("/"))


def mirrored_version(url: str) -> str | None:
    """The version the mirror at ``url`` names in its ``LATEST``, or None when it has none yet."""
    fs, root = fsspec.core.url_to_fs(url)
    latest = f"{root.rstrip('/')}/LATEST"
    return fs.cat_file(latest).decode().strip() if fs.exists(latest) else None


def mirror_holds(url: str, release_folder: Path) -> bool:
    """Whether the mirror at ``url`` names the release of ``release_folder`` in its ``LATEST`` and holds its very
    manifest: a release another curated folder published under the same version is not it."""
    if mirrored_version(url) != release_folder.name:
        return False
    fs, root = fsspec.core.url_to_fs(url)
    manifest = f"{root.rstrip('/')}/releases/{release_folder.name}/{MANIFEST}"
    return fs.exists(manifest) and fs.cat_file(manifest) == (release_folder / MANIFEST).read_bytes()


def mirror(release_folder: Path, changelog: Path, url: str) -> list[str]:
    """Copy a published release folder to ``<url>/releases/<version>/``, then the changelog, then ``LATEST``.

    Its ``manifest.json`` is copied after every other file of the release and ``LATEST`` last, so a
    reader of the mirror that follows ``LATEST`` or a manifest finds every file it names. Returns the
    paths written, in order.
    """
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    version = release_folder.name
    files = sorted((p for p in release_folder.rglob("*") if p.is_file()), key=lambda p: (p.name == "manifest.json", p.as_posix()))
    written = []
    for path in files:
        target = f"{root}/releases/{version}/{path.relative_to(release_folder).as_posix()}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(path), target)
        written.append(target)
    fs.put_file(str(changelog), f"{root}/CHANGELOG.md")
    fs.pipe_file(f"{root}/LATEST", f"{version}\n".encode())
    return [*written, f"{root}/CHANGELOG.md", f"{root}/LATEST"]
