"""Model bundles: a directory of skops files, a serving file and a manifest that describes them.

A bundle describes itself, so loading never guesses: the manifest names the encoder, the
feature settings, each head's labels and hyperparameters, the library versions it was built
with, the hash of its training data and its measured metrics. Files are checked against their
SHA-256 before loading. Nothing is plain pickle:

- the skops files hold the scikit-learn estimators (for evaluation, retraining and use in
  scikit-learn pipelines); skops only rebuilds types from an allow-list;
- ``serving.npz`` holds the same model as arrays (vocabularies, IDF, weights), read with
  ``allow_pickle=False`` by :func:`load_serving`, which is what :func:`triage.load` uses: it
  needs neither scikit-learn nor skops, so loading is about two seconds faster.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.files import sha256_file

from .serving import SERVING_FILE, ModelParts, ServingModel

if TYPE_CHECKING:
    from .features import TextFeaturizer
    from .heads import CalibratedLinearHead

BUNDLE_FORMAT = "kefu-triage-bundle"
BUNDLE_FORMAT_VERSION = 3  # 2: serving.npz added, vocabularies as arrays; 3: heads may carry a neighbour vote
OLDEST_READABLE_FORMAT = 2  # a version 2 bundle is a version 3 one without votes
MANIFEST = "manifest.json"
FEATURIZER_FILE = "featurizer.skops"
SERVING = "serving"  # the serving file's name in the manifest's file list
DISTRIBUTION = "kefu-triage"

# The only types beyond skops' own safe defaults (scikit-learn estimators, numpy, scipy) that a
# bundle may contain. Exact names: a prefix such as "builtins." would admit eval.
_TRUSTED_TYPES = frozenset(
    {"triage.features.TextFeaturizer", "triage.heads.CalibratedLinearHead", "triage.serving.NeighbourVote"}
)
_VERSIONED_PACKAGES = ("scikit-learn", "numpy", "scipy", "skops", "jieba")


class BundleError(RuntimeError):
    """A bundle directory that is missing, incomplete, tampered with or incompatible."""


class Bundle(ModelParts):
    """A loaded (or freshly trained) set of scikit-learn heads sharing one featurizer."""

    featurizer: TextFeaturizer
    heads: dict[str, CalibratedLinearHead]

    def serving(self) -> ServingModel:
        """The model as the runtime scores with it."""
        return ServingModel(featurizer=self.featurizer.serving(),
                            heads={name: head.serving() for name, head in self.heads.items()}, manifest=self.manifest)


def library_versions() -> dict[str, str]:
    """Versions of this library and of the packages a bundle's files depend on."""
    versions = {"python": platform.python_version()}
    for name in (DISTRIBUTION, *_VERSIONED_PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def save_bundle(bundle: Bundle, directory: str | os.PathLike) -> Path:
    """Write `bundle` to `directory` atomically (a crash leaves any previous bundle intact).

    The manifest's ``files`` section is filled in here with each file's SHA-256. `directory` must
    not exist yet, be empty, or hold a bundle (which is replaced): anything else is refused, so a
    mistyped ``--out`` never deletes a user's files.
    """
    import skops.io as sio

    target = Path(directory)
    check_bundle_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        files = {"featurizer": FEATURIZER_FILE}
        sio.dump(bundle.featurizer, staging / FEATURIZER_FILE, compression=8)
        for head, model in bundle.heads.items():
            files[head] = f"{head}.skops"
            sio.dump(model, staging / files[head], compression=8)
        files[SERVING] = SERVING_FILE
        bundle.serving().save(staging / SERVING_FILE)
        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **bundle.manifest,
            "library_versions": library_versions(),
            "files": {k: {"path": v, "sha256": sha256_file(staging / v)} for k, v in files.items()},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        staging.chmod(0o755)  # mkdtemp made it private; a service running as another user must read it
        backup = None
        if target.exists():
            backup = target.with_name(f".{target.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(target, backup)
        try:
            os.replace(staging, target)
        except BaseException:
            if backup is not None:
                os.replace(backup, target)  # put the previous bundle back
            raise
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        bundle.manifest = manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def check_bundle_target(target: str | os.PathLike) -> None:
    """Refuse a save target that exists and is neither an empty directory nor a bundle."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise BundleError(f"{target} is a file, not a bundle directory; choose another output path")
    if not any(target.iterdir()):
        return
    try:
        read_manifest(target)
    except BundleError:
        raise BundleError(
            f"{target} already exists and is not a model bundle; refusing to replace it "
            f"(choose a new or empty directory, or remove it yourself)"
        ) from None


def read_manifest(directory: str | os.PathLike) -> dict:
    """The parsed manifest of a bundle directory, checked for format."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"{directory} is not a model bundle: {MANIFEST} is missing "
            f"(create one with `triage train` or scripts/train_default.py)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path} must hold a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} has format {manifest.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    if not isinstance(manifest.get("format_version"), int):
        raise BundleError(f"{path}: format_version must be an integer, got {manifest.get('format_version')!r}")
    if manifest["format_version"] > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{path} uses bundle format {manifest['format_version']}, newer than this library "
            f"reads ({BUNDLE_FORMAT_VERSION}); upgrade {DISTRIBUTION}"
        )
    if manifest["format_version"] < OLDEST_READABLE_FORMAT:
        raise BundleError(
            f"{path} uses bundle format {manifest['format_version']}, written by an earlier {DISTRIBUTION}; "
            f"retrain it with `triage train` (its manifest lists the settings and data hash to reuse)"
        )
    return manifest


def _verified_file(directory: Path, name: str, entry: object) -> Path:
    if not (isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str)):
        raise BundleError(f"manifest of {directory}: file entry {name!r} needs string 'path' and 'sha256'")
    path = (directory / entry["path"]).resolve()
    if directory.resolve() not in path.parents:
        raise BundleError(f"manifest of {directory}: file {entry['path']!r} lies outside the bundle directory")
    if not path.is_file():
        raise BundleError(f"bundle file {path} is missing")
    if sha256_file(path) != entry["sha256"]:
        raise BundleError(
            f"bundle file {path} does not match the checksum in its manifest; "
            f"the bundle is corrupt or was modified, so it was not loaded"
        )
    return path


def _load_skops(path: Path):
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if t not in _TRUSTED_TYPES]
    if refused:
        raise BundleError(f"bundle file {path} contains types outside the allow-list: {refused}")
    return sio.load(path, trusted=untrusted)


def _files(directory: Path, manifest: dict) -> dict:
    files = manifest.get("files")
    if not isinstance(files, dict) or "featurizer" not in files or SERVING not in files:
        raise BundleError(f"manifest of {directory} must list the featurizer and {SERVING} files")
    return files


def load_bundle(directory: str | os.PathLike) -> Bundle:
    """Load and verify a bundle directory's scikit-learn estimators (for evaluation and retraining;
    :func:`load_serving` is the faster way to score messages)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    built_with = manifest.get("library_versions", {}).get("scikit-learn")
    installed = library_versions()["scikit-learn"]
    if built_with and built_with.split(".")[:2] != installed.split(".")[:2]:
        warnings.warn(
            f"bundle {directory} was built with scikit-learn {built_with}, installed is "
            f"{installed}; predictions may differ slightly (retrain to silence this)",
            stacklevel=2,
        )
    files = _files(directory, manifest)
    featurizer = _load_skops(_verified_file(directory, "featurizer", files["featurizer"]))
    heads = {name: _load_skops(_verified_file(directory, name, entry))
             for name, entry in files.items() if name not in ("featurizer", SERVING)}
    return Bundle(featurizer=featurizer, heads=heads, manifest=manifest)


def load_serving(directory: str | os.PathLike) -> ServingModel:
    """Load and verify what a bundle directory needs to score messages (numpy arrays only)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    path = _verified_file(directory, SERVING, _files(directory, manifest)[SERVING])
    try:
        model = ServingModel.load(path, manifest)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    missing = sorted(set(manifest.get("heads", {})) - set(model.heads))
    if missing:
        raise BundleError(f"{path} lacks the heads {missing} that the manifest lists")
    return model
