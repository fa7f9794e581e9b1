"""`make setup`: the accelerator it detects, the locks it installs, and what those locks resolve to.

This machine has no GPU, so a stand-in `nvidia-smi` script on PATH plays one; the locks are resolved
against the package index with `uv pip sync --dry-run` (index pages only, no wheels downloaded), for
this machine and, with uv's --python-platform and --python-version, for every supported machine and
Python. tests/test_setup_platforms.py holds the platform check and the choice of Python.
"""

import importlib.metadata
import os
import platform
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UV = ROOT / ".tools" / "uv" / "bin" / "uv"
LOCKS = [
    "requirements.lock",
    "requirements-cuda.lock",
    "requirements-tensorflow.lock",
    "requirements-tensorflow-cuda.lock",
]
# The supported machines as uv names them (tools/platform-check refuses the rest): glibc 2.28 stands
# for Linux (uv names no 2.27; the wheels need 2.27), macOS 12 (MACOSX_DEPLOYMENT_TARGET below) for macOS.
PLATFORMS = {
    "linux-x86_64": "x86_64-manylinux_2_28",
    "linux-aarch64": "aarch64-manylinux_2_28",
    "macos-arm64": "aarch64-apple-darwin",
}
PYTHONS = ["3.11", "3.12", "3.13"]
H100 = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-8e1b6d3c-2f4a-4c55-9a1e-0b7d2c9f4e61)"
DRIVERLESS = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)


def _path_without_nvidia_smi() -> str:
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "nvidia-smi").exists())


def _env(tmp_path: Path, nvidia_smi: tuple[str, int] | None) -> dict[str, str]:
    """The environment with no `nvidia-smi`, or with a stand-in that prints `output` and exits `code`."""
    env = {k: v for k, v in os.environ.items() if k not in ("ACCELERATOR", "TENSORFLOW", "MAKEFLAGS", "MFLAGS")}
    env["PATH"] = _path_without_nvidia_smi()
    if nvidia_smi is not None:
        output, code = nvidia_smi
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        script = bin_dir / "nvidia-smi"
        script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
        script.chmod(0o755)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def _accelerator(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([ROOT / "tools" / "accelerator", *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("nvidia_smi", "choice", "reason"),
    [
        ((H100, 0), "cuda", "nvidia-smi lists: GPU 0: NVIDIA H100 80GB HBM3"),
        ((DRIVERLESS, 9), "cpu", "nvidia-smi -L failed: NVIDIA-SMI has failed because it couldn't communicate"),
        (("No devices found.", 6), "cpu", "nvidia-smi -L failed: No devices found."),
        (("", 0), "cpu", "nvidia-smi -L lists no GPU"),
        (None, "cpu", "no nvidia-smi on PATH"),
    ],
    ids=["gpu", "driverless", "no-devices", "empty-listing", "no-nvidia-smi"],
)
def test_accelerator_detection(tmp_path, nvidia_smi, choice, reason):
    env = _env(tmp_path, nvidia_smi)
    assert _accelerator(env) == f"{choice}\n"
    why = _accelerator(env, "--why")
    assert why.startswith(f"{choice} ({reason}") and why.endswith(")\n") and why.count("\n") == 1
    assert "UUID" not in why


def _dry_run(env: dict[str, str], *make_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", "-B", "setup", *make_args], cwd=ROOT, env=env, capture_output=True, text=True)


def _sync_command(env: dict[str, str], *make_args: str) -> list[str]:
    result = _dry_run(env, *make_args)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if " pip sync " in line]
    return shlex.split(line)


@pytest.mark.parametrize(
    ("nvidia_smi", "make_args", "cuda"),
    [
        ((H100, 0), (), True),
        (None, (), False),
        ((DRIVERLESS, 9), (), False),
        ((H100, 0), ("ACCELERATOR=cpu",), False),
        (None, ("ACCELERATOR=cuda",), True),
    ],
    ids=["gpu", "no-nvidia-smi", "driverless", "gpu-forced-cpu", "no-gpu-forced-cuda"],
)
def test_setup_installs_the_cuda_lock_only_for_cuda(tmp_path, nvidia_smi, make_args, cuda):
    env = _env(tmp_path, nvidia_smi)
    command = _sync_command(env, *make_args)
    assert "--require-hashes" in command and "requirements.lock" in command
    assert ("requirements-cuda.lock" in command) is cuda
    assert "requirements-tensorflow-cuda.lock" not in command
    # `make -n` shows the @echo line as the command it is.
    [says] = [line for line in _dry_run(env, *make_args).stdout.splitlines() if "setup: accelerator" in line]
    assert f"setup: accelerator {'cuda' if cuda else 'cpu'} (" in says
    assert says.endswith(f'({make_args[0]} given)"') if make_args else "given" not in says


@pytest.mark.parametrize("bad", ["ACCELERATOR=rocm", "ACCELERATOR=", "TENSORFLOW=rocm"])
def test_a_bad_choice_fails_with_one_line(tmp_path, bad):
    result = _dry_run(_env(tmp_path, None), bad)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert f"{bad}: use cpu" in line, line


def _requirements(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """{normalized name: (version, [hash, ...])} from a `uv pip compile --generate-hashes` file.

    A universal lock's lines may carry environment markers (`tensorflow-cpu==2.21.0 ; sys_platform ...`);
    each package still appears once: one version for every supported machine and Python.
    """
    entries: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in lock.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            requirement = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[^]]*\])?==(\S+)(?: ; [^\\]+)? \\", line)
            assert requirement, f"{lock.name}: not an exact pin followed by hashes: {line!r}"
            name = re.sub(r"[-_.]+", "-", requirement[1]).lower()
            assert name not in entries, f"{lock.name}: {name} twice"
            entries[name] = (requirement[3], [])
        else:
            assert name, f"{lock.name}: indented line before any requirement: {line!r}"
            hash_line = re.fullmatch(r"\s+--hash=sha256:([0-9a-f]{64})( \\)?", line)
            assert hash_line, f"{lock.name}: {name}: not a sha256 hash line: {line!r}"
            entries[name][1].append(hash_line[1])
    return entries


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_is_pinned_with_sha256_hashes(lock):
    entries = _requirements(ROOT / lock)
    assert entries
    assert not [name for name, (_, hashes) in entries.items() if not hashes]


# The wheel tags each supported machine accepts (pip takes --platform literally), newest first.
UV_MACHINES = {
    "linux-x86_64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "linux-aarch64": ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
}


@pytest.mark.parametrize("machine", UV_MACHINES)
def test_uv_is_pinned_by_version_and_hash_for_each_supported_machine(machine, tmp_path):
    """pip, as `make setup` runs it, downloads the wheel that machine gets and checks its sha256."""
    requirements = ROOT / "tools" / "uv-requirements.txt"
    assert len(re.findall(r"^uv==[0-9.]+ \\$", requirements.read_text(), re.MULTILINE)) == 1, "one release, by name"
    platforms = [f"--platform={tag}" for tag in UV_MACHINES[machine]]
    command = [sys.executable, "-m", "pip", "download", "-qq", "--no-deps", "--only-binary=:all:", "--require-hashes"]
    command += [*platforms, "--python-version", "3.11", "-d", tmp_path, "-r", requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("uv-*.whl"))) == 1


def test_the_locks_agree_with_requirements_lock():
    cpu, cuda, tf, tf_cuda = (_requirements(ROOT / lock) for lock in LOCKS)
    jax = cpu["jax"][0]
    assert cpu["jaxlib"][0] == jax
    assert cuda["jax-cuda12-plugin"][0] == cuda["jax-cuda12-pjrt"][0] == jax
    assert tf["tensorflow-cpu"][0] == tf["tensorflow"][0] == tf_cuda["tensorflow"][0]
    assert "pip" in cpu  # the fetch stage runs `python -m pip download`
    assert not {"tensorflow", "tensorflow-cpu"} & cpu.keys(), "the default pipeline needs no TensorFlow"
    assert not [name for name in cpu if name.startswith(("nvidia-", "jax-cuda"))]
    # A package in two locks is the same pin with the same hashes, so uv takes them together.
    locks = {"cpu": cpu, "cuda": cuda, "tf": tf, "tf_cuda": tf_cuda}
    for first, second in [("cpu", "cuda"), ("cpu", "tf"), ("cpu", "tf_cuda"), ("cuda", "tf_cuda"), ("tf", "tf_cuda")]:
        for name in locks[first].keys() & locks[second].keys() - {"tensorflow"}:
            assert locks[first][name] == locks[second][name], (first, second, name)


@pytest.fixture(scope="module")
def uv_venv(tmp_path_factory):
    if not UV.exists():
        pytest.skip("no .tools/uv: run `make setup`")
    venv = tmp_path_factory.mktemp("dry") / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON_PREFERENCE": "only-system"}
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, venv], check=True, env=env)
    return venv


def _would_install(venv: Path, *locks: Path, platform: str | None = None, python: str | None = None) -> dict[str, str]:
    """What `uv pip sync --require-hashes` of `locks` would install: here, or on another machine and Python."""
    command = [UV, "pip", "sync", "--dry-run", "--require-hashes", "--python", venv / "bin" / "python", *locks]
    if platform:
        command += ["--python-platform", PLATFORMS[platform], "--python-version", python]
    env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": "12.0"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{platform or 'here'} {python or ''}: {result.stderr}"
    assert "Would download" in result.stderr
    return dict(re.findall(r"^ \+ (\S+)==(\S+)$", result.stderr, re.MULTILINE))


CUDA_MACHINES = ["linux-x86_64", "linux-aarch64"]


@pytest.fixture(scope="module")
def resolved(uv_venv):
    """Every supported (machine, Python)'s dry run of requirements.lock, alone and with the TensorFlow
    lock, and with the CUDA lock on Linux, resolved a few at a time: {(lock set, machine, python): packages}."""
    jobs = [("cpu", platform, python) for platform in PLATFORMS for python in PYTHONS]
    jobs += [("tensorflow", platform, python) for platform in PLATFORMS for python in PYTHONS]
    jobs += [("cuda", platform, python) for platform in CUDA_MACHINES for python in PYTHONS]
    locks = {
        "cpu": [ROOT / "requirements.lock"],
        "tensorflow": [ROOT / "requirements.lock", ROOT / "requirements-tensorflow.lock"],
        "cuda": [ROOT / "requirements.lock", ROOT / "requirements-cuda.lock"],
    }

    def run(job):
        kind, platform, python = job
        try:
            return job, _would_install(uv_venv, *locks[kind], platform=platform, python=python)
        except AssertionError as failure:
            return job, failure

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(run, jobs))


def _result(resolved, job) -> dict[str, str]:
    packages = resolved[job]
    if isinstance(packages, AssertionError):
        raise packages
    return packages


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_lock_installs_on_every_supported_machine_and_python(resolved, platform, python):
    packages = _result(resolved, ("cpu", platform, python))
    pins = {name: version for name, (version, _) in _requirements(ROOT / "requirements.lock").items()}
    assert {name: pins[name] for name in packages} == packages  # the lock's versions, whatever the machine
    assert not {"tensorflow", "tensorflow-cpu"} & packages.keys()
    assert {
        "jax",
        "jaxlib",
        "keras",
        "dvc",
        "h5py",
        "pip",
        "pytest",
        "playwright",
        "vl-convert-python",
    } <= packages.keys()
    assert not [name for name in packages if name.startswith(("nvidia-", "jax-cuda"))]
    assert "pywin32" not in packages


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_tensorflow_lock_installs_on_every_supported_machine_and_python(resolved, platform, python):
    packages = _result(resolved, ("tensorflow", platform, python))
    pins = _requirements(ROOT / "requirements.lock") | _requirements(ROOT / "requirements-tensorflow.lock")
    assert {name: pins[name][0] for name in packages} == packages
    # tensorflow-cpu has wheels for Linux x86_64 only; elsewhere the `tensorflow` wheel is the CPU build.
    tensorflow = "tensorflow-cpu" if platform == "linux-x86_64" else "tensorflow"
    assert tensorflow in packages and ({"tensorflow", "tensorflow-cpu"} - {tensorflow}).isdisjoint(packages)
    assert not [name for name in packages if name.startswith(("nvidia-", "jax-cuda"))]


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", CUDA_MACHINES)
def test_the_cuda_lock_installs_on_linux_x86_64_and_aarch64(resolved, platform, python):
    packages = _result(resolved, ("cuda", platform, python))
    jax = _requirements(ROOT / "requirements.lock")["jax"][0]
    assert packages["jax"] == packages["jaxlib"] == packages["jax-cuda12-plugin"] == packages["jax-cuda12-pjrt"] == jax
    assert "nvidia-cudnn-cu12" in packages


@pytest.mark.parametrize("platform", CUDA_MACHINES)
def test_tensorflow_cuda_installs_on_linux_x86_64_and_aarch64(uv_venv, platform):
    locks = [ROOT / "requirements.lock", ROOT / "requirements-cuda.lock", ROOT / "requirements-tensorflow-cuda.lock"]
    packages = _would_install(uv_venv, *locks, platform=platform, python="3.11")
    assert packages["tensorflow"] == _requirements(ROOT / "requirements-tensorflow.lock")["tensorflow-cpu"][0]
    assert "tensorflow-cpu" not in packages and "nvidia-cudnn-cu12" in packages
    assert packages["jax-cuda12-plugin"] == packages["jax"]


def test_the_cuda_lock_resolves_with_requirements_lock(uv_venv):
    jax = _requirements(ROOT / "requirements.lock")["jax"][0]
    # For Linux x86_64 cp311 (the CUDA locks are Linux-only), whatever machine runs the test.
    locks = (ROOT / "requirements.lock", ROOT / "requirements-cuda.lock")
    packages = _would_install(uv_venv, *locks, platform="linux-x86_64", python="3.11")
    assert packages["jax"] == packages["jaxlib"] == packages["jax-cuda12-plugin"] == packages["jax-cuda12-pjrt"] == jax
    assert "nvidia-cudnn-cu12" in packages and "tensorflow-cpu" not in packages


def _tensorflow_steps(tmp_path, target: str, *make_args: str) -> list[str]:
    """The `uv pip uninstall` / `uv pip install` lines `make -n target` would run for TensorFlow."""
    result = subprocess.run(
        ["make", "-n", "-B", target, *make_args], cwd=ROOT, env=_env(tmp_path, None), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if re.search(r" pip (un)?install .*tensorflow", line)]


def test_setup_and_repro_install_no_tensorflow_but_the_tests_and_bench_do(tmp_path):
    assert _tensorflow_steps(tmp_path, "setup") == [] and _tensorflow_steps(tmp_path, "repro") == []
    for target in ("test", "bench"):
        uninstall, install = _tensorflow_steps(tmp_path, target)
        assert uninstall.endswith("tensorflow tensorflow-cpu") and "--require-hashes" in install
        assert install.endswith("-r requirements-tensorflow.lock"), install


def test_tensorflow_cuda_replaces_tensorflow_cpu(tmp_path):
    uninstall, install = _tensorflow_steps(tmp_path, "setup", "TENSORFLOW=cuda")
    assert " pip uninstall " in uninstall and uninstall.endswith("tensorflow tensorflow-cpu")
    assert install.endswith("-r requirements-tensorflow-cuda.lock") and "--require-hashes" in install
    assert _tensorflow_steps(tmp_path, "test", "TENSORFLOW=cuda")[1] == install, "the tests take the one asked for"


def test_this_venv_holds_what_make_setup_chose():
    stamps = list(Path(sys.prefix).glob(".installed-*"))
    if len(stamps) != 1:
        pytest.skip(f"{sys.prefix} was not made by `make setup`")
    accelerator = stamps[0].name.split("-")[1]
    tensorflow = [stamp.name.split("-")[1] for stamp in Path(sys.prefix).glob(".tensorflow-*")]
    assert len(tensorflow) <= 1, "one TensorFlow build at a time"
    names = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in importlib.metadata.distributions()}
    cuda = sorted(n for n in names if n.startswith(("nvidia-", "jax-cuda")))
    if accelerator == "cpu" and tensorflow != ["cuda"]:
        assert cuda == []
    if accelerator == "cuda":
        assert importlib.metadata.version("jax-cuda12-plugin") == importlib.metadata.version("jax")
    # tensorflow-cpu exists for Linux x86_64 only; elsewhere the `tensorflow` wheel is the CPU build.
    tf_cpu_wheel = (sys.platform, platform.machine()) == ("linux", "x86_64")
    assert ("tensorflow" in names) is (tensorflow == ["cuda"] or (tensorflow == ["cpu"] and not tf_cpu_wheel))
    assert ("tensorflow-cpu" in names) is (tensorflow == ["cpu"] and tf_cpu_wheel)
    assert "pip" in names


def test_the_github_workflow_is_a_valid_one():
    """It cannot run here: it is held to GitHub's workflow schema, which check-jsonschema ships (no network)."""
    checker = Path(sys.executable).parent / "check-jsonschema"
    workflow = ROOT / ".github" / "workflows" / "test.yml"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", workflow], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = workflow.read_text()
    for runner in ("ubuntu-24.04", "ubuntu-24.04-arm", "macos-15"):
        assert f"os: {runner}\n" in text, runner
    assert "run: .ci/run" in text
