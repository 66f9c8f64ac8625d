"""The simulator registry the CLI uses."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from simulators.runner import SIMULATORS, build


def test_names_the_cli_knows() -> None:
    assert set(SIMULATORS) == {"population", "dossier", "civil-status", "portal", "documents"}


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_each_builds_with_defaults(name: str) -> None:
    assert isinstance(build(name), Starlette)


def test_options_reach_create_app() -> None:
    assert isinstance(build("dossier", hub_url="http://127.0.0.1:9", api_key=None), Starlette)
    with pytest.raises(TypeError):
        build("portal", no_such_option=1)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="civil-status"):
        build("land-registry")
