"""llama-cpp-python is built portably, from the locked sdist, into a wheelhouse keyed by what the build depends on."""

from __future__ import annotations

import re

import pytest

from infra.wheelhouse import CMAKE_ARGS, PACKAGE, ROOT, ensure_wheel, locked_requirement, wheel_key

LOCK = """\
jinja2==3.1.6 \\
    --hash=sha256:aaa
llama-cpp-python==0.3.36 \\
    --hash=sha256:bbb
    # via serverless-agent-runtime (pyproject.toml)
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:ccc
"""


def test_the_locked_entry_is_the_pin_with_its_hash_lines(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK)
    assert locked_requirement(lock) == "llama-cpp-python==0.3.36 \\\n    --hash=sha256:bbb\n"


def test_a_lock_without_the_package_is_a_clear_error(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("jinja2==3.1.6 \\\n    --hash=sha256:aaa\n")
    with pytest.raises(LookupError, match="does not pin llama-cpp-python"):
        locked_requirement(lock)


def test_the_key_changes_with_the_version_the_sdist_hash_and_the_build_flags():
    base = "llama-cpp-python==0.3.36 \\\n    --hash=sha256:bbb\n"
    key = wheel_key(base)
    assert key.startswith("0.3.36-")
    assert wheel_key(base.replace("0.3.36", "0.3.37")).startswith("0.3.37-")
    assert wheel_key(base.replace("bbb", "ddd")) != key
    assert wheel_key(base, cmake_args="-DGGML_NATIVE=ON") != key
    assert wheel_key(base) == key


def test_the_build_flags_turn_off_native_tuning_and_avx512():
    assert "-DGGML_NATIVE=OFF" in CMAKE_ARGS.split()
    assert "-DGGML_AVX512=OFF" in CMAKE_ARGS.split()


def test_a_wheel_already_in_the_wheelhouse_is_used_without_building(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK)
    directory = tmp_path / "wh" / f"{PACKAGE}-{wheel_key(locked_requirement(lock))}"
    directory.mkdir(parents=True)
    wheel = directory / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    wheel.write_bytes(b"")
    assert ensure_wheel(lock, tmp_path / "wh") == wheel


def test_the_installed_llama_cpp_uses_neither_avx512_nor_amx():
    """What the VM refused: the library that runs is the portable build (llama.cpp reports its CPU features)."""
    import llama_cpp

    features = llama_cpp.llama_print_system_info().decode()
    assert re.search(r"\b(AVX2|NEON) = 1", features), features
    assert not re.search(r"\b(AVX512|AMX)\w* = 1", features), features


def test_the_repository_lock_pins_llama_cpp_python():
    assert locked_requirement(ROOT / "requirements.lock").startswith(f"{PACKAGE}==")
