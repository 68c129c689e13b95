"""README "Test your bot in CI" is what CI runs: its three files (conftest.py, the
hand-written cassette, the ccxt bot's test) are written into a fresh project folder and
run by a pytest of their own (a subprocess, the way a bot project runs them), with the
`proxy.testing` plugin loaded only because that conftest.py asks for it."""

from __future__ import annotations

import re

import pytest

from .readme_blocks import section

pytest_plugins = ["pytester"]

CI = section("Test your bot in CI")


def files() -> dict[str, str]:
    """README's blocks of the example, by the path on their first line."""
    out = {}
    for lang in ("python", "yaml"):
        for block in re.findall(rf"^```{lang}\n(.*?)^```$", CI, re.M | re.S):
            first = block.splitlines()[0]
            m = re.match(r"# (tests/\S+?)(:|$)", first)
            if m:
                out[m.group(1)] = block
    return out


def test_the_readme_lists_the_three_files_of_the_example() -> None:
    assert sorted(files()) == ["tests/cassettes/dip.yaml", "tests/conftest.py", "tests/test_bot.py"]
    assert files()["tests/conftest.py"].strip().endswith('pytest_plugins = ["proxy.testing"]')


def test_the_readme_example_passes_in_a_project_of_its_own(pytester: pytest.Pytester) -> None:
    for path, text in files().items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    result = pytester.runpytest_subprocess("tests", "-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=1)


def test_the_fixture_is_opt_in(pytester: pytest.Pytester) -> None:
    """Installed, the plugin registers nothing by itself: without the conftest line there
    is no mexc_paper fixture."""
    pytester.makepyfile(test_x="def test_x(mexc_paper):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mexc_paper' not found*"])
