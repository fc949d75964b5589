"""Home loads Jinja2 and its template in a thread while cPanel answers (rendering.preload): the
page must come out the same, and a template that cannot load fails at render, not silently."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from letsencrypt_cpanel.web import rendering


def test_a_preloaded_template_renders_escaped_and_the_thread_is_waited_for(
    tmp_path: Path,
) -> None:
    (tmp_path / "page.html").write_text("<p>{{ name }}</p>")
    rendering.preload(tmp_path, "page.html")
    assert (tmp_path, "page.html") in rendering._preloads
    assert rendering.render(tmp_path, "page.html", {"name": "<b>x</b>"}) == (
        "<p>&lt;b&gt;x&lt;/b&gt;</p>"
    )
    assert (tmp_path, "page.html") not in rendering._preloads


def test_a_preload_that_fails_is_met_again_by_render(tmp_path: Path) -> None:
    rendering.preload(tmp_path, "missing.html")
    with pytest.raises(jinja2.TemplateNotFound):
        rendering.render(tmp_path, "missing.html", {})
