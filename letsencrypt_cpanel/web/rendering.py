"""The one Jinja2 environment of the plugin's pages (cPanel and WHM), autoescape always on.

Templates live in the repository's `templates/` folder (or `$LECP_TEMPLATES` on an install that
puts them elsewhere). Nothing from a user or from cPanel is ever marked safe: every value a
template prints is escaped.

Each page view is a new CGI process, and importing Jinja2 costs 15-20 ms of CPU in each
(bench/bench_page.py): it is imported when a page is first rendered, not with this module, so
the JSON API and the redirects after a POST never load it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..names import display_name

if TYPE_CHECKING:
    import jinja2

TEMPLATES_ENV = "LECP_TEMPLATES"


def templates_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    override = env.get(TEMPLATES_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "templates"


def format_date(epoch: int | float | None) -> str:
    """A Unix time as "2026-11-27" (UTC), or "-" when unknown."""
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).strftime("%Y-%m-%d")


def format_datetime(value: dt.datetime | int | float | None) -> str:
    if value is None or value == 0:
        return "-"
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between page views: each view is a new CGI process, and compiling
    base.html and a page cost 40-120 ms of every view (bench/). The folder is jinja2's own per-uid
    `_jinja2-cache-UID` in the temp folder, refused unless it is a real folder owned by this uid
    with mode 0700 (so only this user, or root for WHM, can put code there). A cache that cannot
    be read or written is skipped: it never fails a page. A cached template is used only while
    its source is unchanged (jinja2 keys it by name and checks the source's checksum)."""
    import jinja2
    import jinja2.bccache

    class QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, EOFError, ValueError, TypeError):
                bucket.reset()

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        return QuietBytecodeCache()
    except (OSError, RuntimeError):  # no safe folder: compile every time
        return None


def environment(folder: Path) -> jinja2.Environment:
    with _building:  # one environment per folder, also while a preload runs
        return _environment(folder)


_building = threading.Lock()
_preloads: dict[tuple[Path, str], threading.Thread] = {}


def preload(folder: Path, template: str) -> None:
    """Import Jinja2 and load `template` in a thread while the page waits for cPanel's answers:
    the page is a new process each view, the import is 15-20 ms of CPU (bench/bench_page.py),
    and cpsrvd works on the other core meanwhile. `render` waits for it; a failure here is
    `render`'s to meet again."""

    def load() -> None:
        with contextlib.suppress(Exception):
            environment(folder).get_template(template)

    thread = threading.Thread(target=load, name="preload", daemon=True)
    _preloads[(folder, template)] = thread
    thread.start()


@lru_cache(maxsize=4)
def _environment(folder: Path) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        bytecode_cache=_bytecode_cache(),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = format_date
    env.filters["datetime"] = format_datetime
    env.filters["display_name"] = display_name
    return env


def render(folder: Path, template: str, context: Mapping[str, Any]) -> str:
    loading = _preloads.pop((folder, template), None)
    if loading is not None:
        loading.join()
    return environment(folder).get_template(template).render(**context)
