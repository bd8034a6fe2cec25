"""scripts/pip_sources_for_uv.py: the Makefile hands uv the package sources pip is configured with."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "pip_sources_for_uv.py"
spec = importlib.util.spec_from_file_location("pip_sources_for_uv", SCRIPT)
assert spec is not None and spec.loader is not None
pip_sources = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pip_sources)


def test_indexes_links_and_constraints_become_uv_options() -> None:
    listed = """:env:.default-timeout='180'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/elsewhere'
"""
    assert pip_sources.uv_options(listed) == [
        "--extra-index-url", "file:///opt/pypi/simple", "--extra-index-url", "file:///opt/pypi-more/simple",
        "--find-links", "/opt/wheels",  # a PIP_* variable wins over pip.conf, as in pip
        "--constraint", "/etc/xdg/pip/constraints.txt",
    ]  # fmt: skip


def test_install_section_wins_over_global_and_nothing_set_gives_nothing() -> None:
    listed = "global.index-url='https://a.example/simple'\ninstall.index-url='https://b.example/simple'\n"
    assert pip_sources.uv_options(listed) == ["--index-url", "https://b.example/simple"]
    assert pip_sources.uv_options("") == []


def test_the_script_prints_options_uv_accepts() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "" or out.startswith("--")
