"""What every view of the cPanel page gets: the request, the user's API, record and files, and
helpers to render, link and look a vhost up among the user's own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from ..certificates import find_vhost
from ..config import Settings
from ..cpanel.models import Vhost
from ..cpanel.uapi import UserAPI
from ..errors import NameRefused, RecordError
from ..record_format import Record
from ..store import RecordStore
from .csrf import CsrfGuard
from .error_advice import PageError
from .nvdata_files import NvdataFolder
from .rendering import render
from .responses import Request, Response, redirect

if TYPE_CHECKING:
    from ..issuance import IssueResult


class PageIssuer(Protocol):
    """What the page needs of `issuance.Issuer` (a protocol, so Home never imports it)."""

    def issue(
        self,
        raw_names: Sequence[str],
        key_type: str | None = None,
        *,
        challenge: str = "",
        dry_run: bool = False,
    ) -> IssueResult: ...

    def reinstall(self, vhost_name: str) -> IssueResult: ...

    def remove(
        self, vhost_name: str, *, revoke: bool = False, reason: str = "unspecified"
    ) -> None: ...


IssuerFactory = Callable[
    [UserAPI, RecordStore, Settings, "str | None", Callable[[str], None]], PageIssuer
]


def default_issuer(
    api: UserAPI,
    store: RecordStore,
    settings: Settings,
    contact_email: str | None,
    progress: Callable[[str], None],
) -> PageIssuer:
    # Imported here, not at the top: it pulls in acme, josepy, requests and key generation,
    # which Home (a CGI started per request) must not pay for.
    from ..issuance import Issuer

    return Issuer(api, store, settings, contact_email=contact_email, progress=progress)


@dataclass
class PageContext:
    request: Request
    settings: Settings
    api: UserAPI
    user: str
    home: Path
    nvdata: NvdataFolder
    csrf: CsrfGuard
    page_url: str  # "/cpsessN/frontend/jupiter/letsencrypt-cpanel/letsencrypt.live.cgi"
    templates: Path
    nonce: str
    issuer_factory: IssuerFactory
    _vhosts: list[Vhost] | None = field(default=None, repr=False)

    @property
    def store(self) -> RecordStore:
        return RecordStore(self.home)

    @property
    def wants_json(self) -> bool:
        return self.request.wants_json

    def record(self) -> tuple[Record, str]:
        """The user's record, or an empty one and the reason it could not be read."""
        try:
            return self.store.load(timeout=10), ""
        except RecordError as exc:
            return Record(), str(exc)

    def url(self, action: str = "", **params: str) -> str:
        query = {"action": action, **params} if action else dict(params)
        return self.page_url + ("?" + urlencode(query) if query else "")

    def vhosts(self) -> list[Vhost]:
        if self._vhosts is None:
            self._vhosts = self.api.domains_data()
        return self._vhosts

    def vhost(self, *param_names: str) -> Vhost:
        """The user's vhost named in the request (by any of its names); 404 for anything else,
        another user's website included (the app only knows what domains_data lists)."""
        wanted = self.request.value(*(param_names or ("vhost", "virtual_host", "domain")))
        if not wanted:
            raise PageError(400, "Say which website: the request names none.")
        try:
            return find_vhost(self.vhosts(), wanted)
        except NameRefused as exc:
            raise PageError(
                404,
                f"{wanted!r} is not one of the websites of this cPanel account. "
                "Go back to the list and pick one of yours.",
            ) from exc

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        context = {
            "page": self,
            "user": self.user,
            "csrf_token": self.csrf.token(),
            "nonce": self.nonce,
            **values,
        }
        body = render(self.templates, template, context).encode("utf-8")
        return Response(status, body, nonce=self.nonce)

    def done(self, location: str) -> Response:
        return redirect(location)
