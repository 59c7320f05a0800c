"""Saving and loading a knowledge base directory: versioned, checksummed, atomic, locked.

Layout::

    kb_dir/
      CURRENT          name of the live version (replaced atomically)
      .lock            file lock serialising writers
      v-<stamp>/       manifest.json, entries.jsonl, vectors.faiss, passage_ids.json

A save writes a complete new version directory, fsyncs it, then points ``CURRENT`` at it with
one atomic rename; a crash at any moment leaves the previous version live and loadable, and a
reader never sees a half-written version. The version before the live one is kept (a reader
that opened it keeps working); older ones are pruned.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

from .files import DataFileError, sha256_file
from .index import IndexParams, VectorIndex
from .schema import load_entries, write_entries_jsonl

FORMAT = "kefu-kb/1"
CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
_FILES = ("entries.jsonl", "vectors.faiss", "passage_ids.json")
_VERSION_RE = re.compile(r"^v-\d{8}T\d{6}-[0-9a-f]{8}$")


def _is_version(path: Path) -> bool:
    """A version directory this library wrote (only those are ever pruned)."""
    name = path.name[len(".tmp-"):] if path.name.startswith(".tmp-") else path.name
    return bool(_VERSION_RE.match(name)) and path.is_dir()


class KnowledgeBaseFileError(RuntimeError):
    """A knowledge-base directory that cannot be loaded (missing, corrupt, wrong encoder)."""


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows fsync on a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# Directories this thread's writer lock created just now: to `load` they do not exist yet.
_made_by_lock = threading.local()


class _DirectoryLock:
    """The writer lock of a knowledge-base directory, as a context manager.

    The lock file lives in the directory, so entering creates the directory when it is missing
    (a first save). When the block leaves no knowledge base there (an edit refused because the
    directory holds none, a failed first save), the lock file and the directories that entering
    created are removed again, before the lock is released: a mistyped path leaves nothing
    behind. A waiter whose lock file was removed meanwhile notices and takes the lock afresh.
    """

    def __init__(self, directory: Path, timeout: float) -> None:
        self.directory = directory
        self.timeout = timeout
        self._lock = None
        self._created: list[Path] = []
        self._created_file = False

    def __enter__(self):
        from filelock import FileLock, Timeout

        path = self.directory / LOCK
        deadline = time.monotonic() + self.timeout if self.timeout >= 0 else None
        while True:
            created, parent = [], self.directory
            while not parent.exists() and parent != parent.parent:
                created.append(parent)
                parent = parent.parent
            self.directory.mkdir(parents=True, exist_ok=True)
            existed = path.exists()
            left = -1 if deadline is None else max(0.0, deadline - time.monotonic())
            lock = FileLock(str(path), timeout=left)
            try:
                lock.acquire()
            except FileNotFoundError:  # a refused writer removed the directory meanwhile: again
                if deadline is not None and time.monotonic() >= deadline:
                    raise Timeout(str(path)) from None
                continue
            if _holds(lock, path):
                break
            lock.release()  # the file was removed while we waited: that lock guards nothing
        self._lock, self._created, self._created_file = lock, created, not existed
        if created:
            _made_by_lock.paths = getattr(_made_by_lock, "paths", set()) | {self.directory.absolute()}
        return lock

    def __exit__(self, *exc_info) -> None:
        _made_by_lock.paths = getattr(_made_by_lock, "paths", set()) - {self.directory.absolute()}
        try:
            if (self._created or self._created_file) and not (self.directory / CURRENT).exists():
                with contextlib.suppress(OSError):
                    (self.directory / LOCK).unlink()
                for directory in self._created:  # deepest first; only while empty
                    with contextlib.suppress(OSError):
                        directory.rmdir()
        finally:
            self._lock.release()


def _holds(lock, path: Path) -> bool:
    """Whether `lock` holds the file now at `path` (not one removed while it waited)."""
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    try:
        here = os.stat(path)
        return fd is None or os.path.samestat(here, os.fstat(fd))
    except OSError:
        return False


def lock(directory: str | Path, timeout: float = 60.0) -> _DirectoryLock:
    """The writer lock of a knowledge-base directory: ``with lock(directory): ...`` (a
    ``filelock.FileLock`` on ``directory/.lock``; nothing is left behind when the block leaves
    no knowledge base there)."""
    return _DirectoryLock(Path(directory), timeout)


def _versions() -> dict:
    import faiss
    import numpy

    from . import __version__

    return {"retrieval": __version__, "faiss": faiss.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def save(kb, directory: str | Path) -> Path:
    """Write `kb` as a new version of `directory` (caller holds :func:`lock`). Returns the version path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / CURRENT).exists():
        foreign = [p.name for p in directory.iterdir() if p.name != LOCK and not _is_version(p)]
        if foreign:
            raise KnowledgeBaseFileError(
                f"{directory} is not empty and is not a knowledge-base directory (it holds {foreign[:3]}); "
                "choose a new or empty directory")
    name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    staging = directory / f".tmp-{name}"
    staging.mkdir()
    try:
        buffer = io.StringIO()
        write_entries_jsonl(kb._entries.values(), buffer)
        _write(staging / "entries.jsonl", buffer.getvalue().encode("utf-8"))
        vectors = kb._vectors if kb._vectors is not None else VectorIndex(kb.encoder.dim, kb.index_params)
        vectors.save(staging / "vectors.faiss")
        with open(staging / "vectors.faiss", "rb+") as fh:
            os.fsync(fh.fileno())
        _write(staging / "passage_ids.json", json.dumps(kb._passage_ids).encode())
        manifest = {
            "format": FORMAT,
            "encoder": kb.encoder_name,
            "dim": vectors.dim,
            "entries": len(kb._entries),
            "passages": len(kb._passages),
            "next_passage_id": kb._next_id,
            "index": {**kb.index_params.to_dict(), "layout": vectors.kind},
            "lexical": kb._lexical.params(),
            "search": kb.config.to_dict(),
            "taxonomy": kb.taxonomy,
            "reranker": kb.reranker,
            "rerank_depth": kb.rerank_depth,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": _versions(),
            "sha256": {f: sha256_file(staging / f) for f in _FILES},
        }
        _write(staging / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
        _fsync_dir(staging)
        os.rename(staging, directory / name)
        _fsync_dir(directory)
        pointer = directory / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
        previous = (directory / CURRENT).read_text().strip() if (directory / CURRENT).exists() else None
        _write(pointer, name.encode())
        os.replace(pointer, directory / CURRENT)
        _fsync_dir(directory)
        kb.saved_version = name
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in directory.iterdir():
        if _is_version(old) and old.name not in (name, previous):
            shutil.rmtree(old, ignore_errors=True)
    return directory / name


def load(directory: str | Path, *, encoder: str | None = None, reranker: str | None = None):
    """Load the live version of `directory`, verifying checksums and the encoder.

    Raises
    ------
    KnowledgeBaseFileError
        Not a knowledge-base directory, a checksum mismatch, an unknown format, or an index
        built with a different encoder than `encoder`.
    """
    from .search import KnowledgeBase, _lexical_text, _Passage, _passages

    directory = Path(directory)
    pointer = directory / CURRENT
    build = "build one with `triage kb build --input FAQ_FILE --out DIR`"
    if not directory.exists() or directory.absolute() in getattr(_made_by_lock, "paths", ()):
        raise KnowledgeBaseFileError(f"{directory} does not exist; check the path, or {build}")
    if directory.is_dir() and not pointer.exists() and not any(p.name != LOCK for p in directory.iterdir()):
        raise KnowledgeBaseFileError(f"{directory} is empty, it holds no knowledge base; check the path, or {build}")
    if not pointer.is_file():
        raise KnowledgeBaseFileError(
            f"{directory} is not a knowledge-base directory (no {CURRENT} file); build one with "
            "`triage kb build --input FAQ_FILE --out DIR`")
    name = pointer.read_text().strip()
    if not _VERSION_RE.match(name):
        raise KnowledgeBaseFileError(f"{pointer} names {name[:80]!r}, not a version directory; rebuild the knowledge base")
    version = directory / name
    try:
        manifest = json.loads((version / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise KnowledgeBaseFileError(f"{version / MANIFEST} is missing or not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise KnowledgeBaseFileError(f"{version} has format {manifest.get('format')!r}; this library reads {FORMAT!r}")
    for name in _FILES:
        path = version / name
        if not path.is_file():
            raise KnowledgeBaseFileError(f"{path} is missing; the knowledge base is incomplete, rebuild it")
        if sha256_file(path) != manifest["sha256"].get(name):
            raise KnowledgeBaseFileError(
                f"{path} does not match its checksum in the manifest (changed or corrupted); rebuild the "
                "knowledge base or restore the file")
    if encoder is not None and encoder != manifest["encoder"]:
        raise KnowledgeBaseFileError(
            f"{directory} was built with encoder {manifest['encoder']!r} ({manifest['dim']}-d vectors), not "
            f"{encoder!r}; load it without encoder=, or rebuild with `triage kb build --encoder {encoder}`")
    index = {k: v for k, v in manifest["index"].items() if k != "layout"}
    lexical = manifest["lexical"]
    kb = KnowledgeBase(encoder=manifest["encoder"], index=index, config=manifest["search"],
                       taxonomy=manifest.get("taxonomy"), user_words=lexical.get("user_words", ()),
                       reranker=reranker or manifest.get("reranker"),
                       rerank_depth=manifest.get("rerank_depth", 20))
    try:
        entries = load_entries(version / "entries.jsonl", taxonomy=kb.taxonomy, allow_empty=True)
    except DataFileError as exc:
        raise KnowledgeBaseFileError(str(exc)) from None
    passage_ids = json.loads((version / "passage_ids.json").read_text())
    kb._vectors = VectorIndex.load(version / "vectors.faiss", IndexParams(**index))
    if kb._vectors.dim != manifest["dim"]:
        raise KnowledgeBaseFileError(f"{version / 'vectors.faiss'} holds {kb._vectors.dim}-d vectors, "
                                     f"the manifest says {manifest['dim']}")
    for entry in entries:
        pids = passage_ids.get(entry.id)
        passages: list[_Passage] = _passages(entry)
        if pids is None or len(pids) != len(passages):
            raise KnowledgeBaseFileError(f"{version}: passage ids of entry {entry.id!r} do not match its text; rebuild")
        kb._entries[entry.id] = entry
        kb._passage_ids[entry.id] = list(pids)
        kb._passages.update(zip(pids, passages))
    if len(kb._vectors) != len(kb._passages):
        raise KnowledgeBaseFileError(f"{version}: the FAISS index has {len(kb._vectors)} vectors for "
                                     f"{len(kb._passages)} passages; rebuild")
    kb._next_id = int(manifest["next_passage_id"])
    kb._lexical.add((e.id, _lexical_text(e)) for e in entries)
    kb.manifest = manifest
    kb.saved_version = version.name
    return kb
