from __future__ import annotations

import pytest

from connectors.errors import RequestNotMappable
from connectors.paths import render_path


def test_values_are_quoted_one_segment_each() -> None:
    path = render_path("/a/{x}/b/{y_z}", {"x": "1/2 3", "y_z": "Huế?&"})
    assert path == "/a/1%2F2%203/b/Hu%E1%BA%BF%3F%26"


def test_template_without_parameters() -> None:
    assert render_path("/plain/path", {}) == "/plain/path"


@pytest.mark.parametrize("params", [{}, {"x": ".."}, {"x": "."}])
def test_missing_or_dot_segment_is_refused(params: dict[str, str]) -> None:
    with pytest.raises(RequestNotMappable) as info:
        render_path("/a/{x}", params)
    assert info.value.request_sent is False
