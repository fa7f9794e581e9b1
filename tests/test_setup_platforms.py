"""`make setup`'s platform check and choice of Python (tools/platform-check), on stand-in machines.

Each test runs the script with a PATH of stand-ins only: `uname`, `ldd`, `getconf`, `sw_vers` and
`sysctl` scripts that answer as the machine would, and Python scripts that answer the script's probe
as that interpreter would (`cpython 3.12.4 arm64 pip /opt/homebrew/bin/python3.12`). So macOS,
Linux on ARM, musl, Windows and other Pythons are checked here, on Linux x86_64, without them.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tools" / "platform-check"
SUPPORTED = (
    "supported are Linux x86_64 and aarch64 (glibc 2.27 or later) and macOS 12 or later on Apple silicon (arm64)"
)

LINUX_X86 = {
    "uname -s": "Linux",
    "uname -m": "x86_64",
    "ldd": "ldd (Debian GLIBC 2.36-9) 2.36",
    "getconf": "glibc 2.36",
}
LINUX_ARM = {**LINUX_X86, "uname -m": "aarch64"}
MAC_ARM = {"uname -s": "Darwin", "uname -m": "arm64", "sw_vers": "14.5", "sysctl": "0"}
MACHINES = {"linux-x86_64": LINUX_X86, "linux-aarch64": LINUX_ARM, "macos-arm64": MAC_ARM}


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _python(version: str, arch: str, *, implementation: str = "cpython", pip: bool = True) -> str:
    """The body of a stand-in interpreter: its answer to tools/platform-check's probe."""
    return f'echo "{implementation} {version} {arch} {"pip" if pip else "no-pip"} $0"'


def _machine(tmp_path: Path, machine: dict[str, str], pythons: dict[str, str]) -> dict[str, str]:
    """An environment whose PATH holds only the stand-ins (and grep, which the script pipes into)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(
        bin_dir / "uname",
        f'case "$1" in -s) echo "{machine["uname -s"]}" ;; -m) echo "{machine["uname -m"]}" ;; *) exit 1 ;; esac',
    )
    for tool in ("ldd", "getconf", "sw_vers", "sysctl"):
        if tool in machine:
            _script(bin_dir / tool, f'echo "{machine[tool]}"')
    for name, body in pythons.items():
        _script(bin_dir / name, body)
    (bin_dir / "grep").symlink_to(shutil.which("grep"))
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def _check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", CHECK, *args], env=env, capture_output=True, text=True)


def _chosen(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.count("\n") == 1, result
    assert result.stdout.startswith("python: ")
    return result.stdout.split()[1]


def _refused(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("setup: ")
    return line


@pytest.mark.parametrize("version", ["3.11.9", "3.12.4", "3.13.1"])
@pytest.mark.parametrize("machine", MACHINES)
def test_every_supported_machine_and_python_is_accepted(tmp_path, machine, version):
    arch = MACHINES[machine]["uname -m"]
    env = _machine(tmp_path, MACHINES[machine], {"python3": _python(version, arch)})
    result = _check(env)
    assert _chosen(result) == str(tmp_path / "bin" / "python3")
    where = {"linux-x86_64": "Linux x86_64", "linux-aarch64": "Linux aarch64", "macos-arm64": "macOS arm64"}[machine]
    assert f"(CPython {version} on {where}: python3)" in result.stdout


@pytest.mark.parametrize(
    ("machine", "says"),
    [
        ({"uname -s": "Darwin", "uname -m": "x86_64", "sysctl": "0"}, "this machine is an Intel Mac (macOS x86_64)"),
        ({"uname -s": "Darwin", "uname -m": "x86_64", "sysctl": "1"}, "runs under Rosetta"),
        ({**MAC_ARM, "sw_vers": "11.7.10"}, "this machine is macOS 11.7.10 on Apple silicon"),
        ({**LINUX_X86, "ldd": "musl libc (x86_64)\nVersion 1.2.4"}, "Linux x86_64 with musl libc"),
        ({**LINUX_ARM, "ldd": "musl libc (aarch64)"}, "Linux aarch64 with musl libc"),
        ({**LINUX_X86, "getconf": "glibc 2.17"}, "Linux x86_64 with glibc 2.17"),
        ({**LINUX_X86, "uname -m": "ppc64le"}, "this machine is Linux ppc64le"),
        (
            {"uname -s": "MINGW64_NT-10.0-19045", "uname -m": "x86_64"},
            "Windows (MINGW64_NT-10.0-19045 x86_64) outside WSL2",
        ),
        ({"uname -s": "FreeBSD", "uname -m": "amd64"}, "this machine is FreeBSD amd64"),
    ],
    ids=["intel-mac", "rosetta", "macos-11", "musl", "musl-arm", "old-glibc", "ppc64le", "windows", "freebsd"],
)
def test_an_unsupported_machine_is_refused_in_one_line(tmp_path, machine, says):
    env = _machine(tmp_path, machine, {"python3": _python("3.12.4", machine["uname -m"])})
    line = _refused(_check(env))
    assert says in line and SUPPORTED in line and "use WSL2" in line, line


@pytest.mark.parametrize(
    ("python3", "says"),
    [
        (_python("3.14.0", "x86_64"), "python3 is CPython 3.14.0"),
        (_python("3.10.14", "x86_64"), "python3 is CPython 3.10.14"),
        (_python("3.9.6", "x86_64"), "python3 is CPython 3.9.6"),
        (_python("3.11.9", "x86_64", implementation="pypy"), "python3 is PyPy 3.11.9, not CPython"),
        (_python("3.12.4", "x86_64", pip=False), "python3 is CPython 3.12.4 without pip"),
        ("exit 127", "python3 does not run"),
    ],
    ids=["3.14", "3.10", "3.9", "pypy", "no-pip", "broken"],
)
def test_no_suitable_python_says_what_to_install(tmp_path, python3, says):
    line = _refused(_check(_machine(tmp_path, LINUX_X86, {"python3": python3})))
    assert "no CPython 3.11 to 3.13 with pip found on PATH" in line and says in line, line
    assert "install one" in line and "PYTHON=" in line


def test_no_python_at_all(tmp_path):
    line = _refused(_check(_machine(tmp_path, MAC_ARM, {})))
    assert "no python3, python3.13, python3.12 or python3.11" in line and "brew install python@3.12" in line


def test_a_mac_whose_python3_is_the_system_3_9_takes_homebrews_3_12(tmp_path):
    pythons = {"python3": _python("3.9.6", "arm64"), "python3.12": _python("3.12.4", "arm64")}
    result = _check(_machine(tmp_path, MAC_ARM, pythons))
    assert _chosen(result) == str(tmp_path / "bin" / "python3.12")
    assert "(CPython 3.12.4 on macOS arm64: python3.12; python3 is CPython 3.9.6)" in result.stdout


def test_python3_in_range_wins_over_a_newer_versioned_one(tmp_path):
    pythons = {"python3": _python("3.11.9", "x86_64"), "python3.13": _python("3.13.1", "x86_64")}
    assert _chosen(_check(_machine(tmp_path, LINUX_X86, pythons))) == str(tmp_path / "bin" / "python3")


def test_the_newest_in_range_is_taken_and_shims_that_do_not_run_are_passed_over(tmp_path):
    # pyenv puts a shim for every installed version on PATH; one not selected exits 127.
    pythons = {
        "python3": _python("3.14.0", "x86_64"),
        "python3.13": 'echo "pyenv: python3.13: command not found" >&2; exit 127',
        "python3.12": _python("3.12.4", "x86_64"),
        "python3.11": _python("3.11.9", "x86_64"),
    }
    result = _check(_machine(tmp_path, LINUX_X86, pythons))
    assert _chosen(result) == str(tmp_path / "bin" / "python3.12")
    assert "python3 is CPython 3.14.0, python3.13 does not run" in result.stdout


def test_an_x86_64_python_on_apple_silicon_is_passed_over(tmp_path):
    # An Intel Homebrew Python (/usr/local/bin) runs under Rosetta: its wheels would be x86_64 ones.
    pythons = {"python3": _python("3.12.4", "x86_64"), "python3.11": _python("3.11.9", "arm64")}
    result = _check(_machine(tmp_path, MAC_ARM, pythons))
    assert _chosen(result) == str(tmp_path / "bin" / "python3.11")
    assert "python3 is CPython 3.12.4 built for x86_64, not this machine's arm64" in result.stdout


def test_python_given_is_used_or_refused_by_name(tmp_path):
    pythons = {"python3": _python("3.11.9", "x86_64"), "custom": _python("3.13.1", "x86_64")}
    env = _machine(tmp_path, LINUX_X86, pythons)
    result = _check(env, "custom")
    assert _chosen(result) == str(tmp_path / "bin" / "custom") and "PYTHON=custom)" in result.stdout
    (tmp_path / "bin" / "old").write_text(f"#!/bin/sh\n{_python('3.10.14', 'x86_64')}\n")
    (tmp_path / "bin" / "old").chmod(0o755)
    assert "setup: PYTHON=old is CPython 3.10.14: supported are" in _refused(_check(env, "old"))
    assert "setup: PYTHON=missing was not found or does not run" in _refused(_check(env, "missing"))


def test_this_machine_is_supported_and_its_python_found():
    result = subprocess.run([CHECK], capture_output=True, text=True)
    assert _chosen(result) and "CPython 3.1" in result.stdout


def test_make_setup_refuses_before_it_downloads_anything(tmp_path):
    """The real Makefile in a fresh copy, on a stand-in Intel Mac: one line, exit 2, no .tools or .venv."""
    project = tmp_path / "project"
    project.mkdir()
    for name in (
        "Makefile",
        "tools",
        "requirements.lock",
        "requirements-cuda.lock",
        "requirements-tensorflow.lock",
        "requirements-tensorflow-cuda.lock",
    ):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, project / name)
    stand_ins = tmp_path / "machine"
    stand_ins.mkdir()
    env = _machine(stand_ins, {"uname -s": "Darwin", "uname -m": "x86_64", "sysctl": "0"}, {})
    env["PATH"] = f"{env['PATH']}{os.pathsep}/usr/bin{os.pathsep}/bin"  # make, sh, cat, cksum, cut
    result = subprocess.run(["make", "setup"], cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 2, result
    [line] = result.stderr.splitlines()
    assert "setup: this machine is an Intel Mac (macOS x86_64)" in line and SUPPORTED in line, line
    assert not (project / ".tools").exists() and not (project / ".venv").exists()
