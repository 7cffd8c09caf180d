"""Checksummed files: look in the cache, then in a local mirror folder, then download.

Every file is identified by its sha256, which is always checked. Downloads are atomic
(temporary file in the cache folder, checked, then renamed), so a failed or corrupted
download never leaves a file in the cache. A source may be a plain URL or a member of an
archive: a zip (a PyPI wheel) or a tar, plain or compressed (a PyPI source archive), given as
``{"url": ..., "member": ..., "sha256": ...}``; the archive's own sha256, when given, is checked
before anything is read out of it, and the member is checked by the file's sha256 as always.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .files import atomic_write, remove_stale_parts

CACHE_ENV = "DENOISERS_CACHE"
#: Environment variables that hold folders (``os.pathsep``-separated for the mirrors).
PATH_ENVS = ("DENOISERS_CACHE", "DENOISERS_WEIGHTS_MIRROR", "DENOISERS_DATA_MIRROR")

log = logging.getLogger(__name__)


def absolute_path_env(names=PATH_ENVS, base: str | Path | None = None) -> None:
    """Make the relative folders in these environment variables absolute, against ``base`` (the
    folder they were given in: the current one unless said), once, in ``os.environ`` itself, so
    that this process after a ``chdir`` and every process it starts read the same folders."""
    base = Path(base) if base is not None else Path.cwd()
    for name in names:
        value = os.environ.get(name)
        if not value:
            continue
        parts = [str(base / p) if p and not os.path.isabs(p) else p for p in value.split(os.pathsep)]
        os.environ[name] = os.pathsep.join(parts)


absolute_path_env()  # on import, in the folder the process was started in


class ChecksumError(RuntimeError):
    """A file's sha256 is not the one the manifest expects."""


class FetchError(RuntimeError):
    """A file could not be found locally nor downloaded."""


@dataclass(frozen=True)
class Source:
    url: str
    member: str | None = None  # path inside a zip or tar archive (a wheel, an sdist) at ``url``
    sha256: str | None = None  # of the archive at ``url`` (a member's own sha256 is the file's)


@dataclass(frozen=True)
class FileSpec:
    """One checksummed file: where it lives relative to a mirror/cache root and where to get it."""

    relpath: str
    sha256: str
    sources: tuple[Source, ...] = field(default=())
    size: int | None = None


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "denoiser-compare")


def mirror_folders(env: str) -> list[Path]:
    """The folders of the ``os.pathsep``-separated environment variable ``env`` (none if unset)."""
    return [Path(p) for p in os.environ.get(env, "").split(os.pathsep) if p]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> None:
    """Raise ``ChecksumError`` naming the file and both hashes if ``path`` does not match."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(f"{path}: sha256 is {actual}, expected {expected}")


def locate(spec: FileSpec, cache_dir: Path, mirrors: list[Path] = (), download: bool = True) -> Path:
    """Return a local path holding ``spec``'s exact bytes.

    Order: ``cache_dir / relpath`` (a bad cached copy is removed), each mirror folder
    (used in place, never copied), then each source, downloaded into the cache.
    """
    cached = cache_dir / spec.relpath
    problems = []
    if cached.is_file():
        try:
            verify(cached, spec.sha256)
            return cached
        except ChecksumError as exc:
            cached.unlink()
            problems.append(f"removed a damaged cached copy ({exc})")
            log.warning("removed a damaged cached copy of %s (%s); fetching it again", spec.relpath, exc)
    elif cached.exists():
        problems.append(f"{cached} is not a file")
    for mirror in mirrors:
        candidate = Path(mirror) / spec.relpath
        if candidate.is_file():
            try:
                verify(candidate, spec.sha256)
                return candidate
            except (ChecksumError, OSError) as exc:
                problems.append(str(exc))
        elif candidate.exists():
            problems.append(f"{candidate} is not a file")
    if download:
        for source in spec.sources:
            try:
                return _download(source, spec, cached)
            except (OSError, ChecksumError, zipfile.BadZipFile, tarfile.TarError, KeyError) as exc:
                problems.append(f"{source.url}: {exc}")
    where = ", ".join(str(m) for m in mirrors) or "no mirror set"
    detail = "; ".join(problems) or "no source could be tried"
    raise FetchError(f"{spec.relpath} not found in the cache ({cache_dir}) or mirrors ({where}): {detail}")


STALE_PART_SECONDS = 3600  # a partial download this old was left by a killed process


class _Hashing:
    """A binary file wrapper that hashes what goes through it."""

    def __init__(self, f) -> None:
        self.f, self.digest = f, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.f.write(data)


def _open_url(url: str):
    request = urllib.request.Request(url, headers={"User-Agent": "denoiser-compare"})
    return urllib.request.urlopen(request, timeout=60)


def _copy_member(archive_file, source: Source, out) -> None:
    """Copy ``source.member`` of the archive open in ``archive_file`` (zip, or tar of any
    compression tarfile reads) into ``out``. Nothing is written to disk under the member's name;
    a member that is not a regular file (a link, a folder) is refused."""
    if zipfile.is_zipfile(archive_file):
        with zipfile.ZipFile(archive_file) as archive, archive.open(source.member) as member:
            shutil.copyfileobj(member, out)
        return
    archive_file.seek(0)
    with tarfile.open(fileobj=archive_file, mode="r:*") as archive:
        info = archive.getmember(source.member)
        if not info.isfile():
            raise tarfile.TarError(f"member {source.member} is not a regular file")
        with archive.extractfile(info) as member:
            shutil.copyfileobj(member, out)


def _download(source: Source, spec: FileSpec, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target, STALE_PART_SECONDS)
    with atomic_write(target) as raw:  # checked before the rename: a bad download never lands
        out = _Hashing(raw)
        if source.member is None:
            with _open_url(source.url) as response:
                shutil.copyfileobj(response, out)
        else:  # the archive goes to an unnamed temporary file, removed whatever happens
            with tempfile.TemporaryFile(dir=target.parent) as archive_file:
                archive = _Hashing(archive_file)
                with _open_url(source.url) as response:
                    shutil.copyfileobj(response, archive)
                if source.sha256 is not None and archive.digest.hexdigest() != source.sha256:
                    raise ChecksumError(f"{source.url}: archive sha256 is {archive.digest.hexdigest()}, "
                                        f"expected {source.sha256}")
                archive_file.seek(0)
                _copy_member(archive_file, source, out)
        actual = out.digest.hexdigest()
        if actual != spec.sha256:
            raise ChecksumError(f"{source.url}: sha256 is {actual}, expected {spec.sha256}")
    log.info("downloaded %s into %s", spec.relpath, target)
    return target
