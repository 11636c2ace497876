"""The connection to a Label Studio server, through ``label-studio-sdk`` (2.x ``LabelStudio``).

Settings come from the environment: ``LABEL_STUDIO_URL`` (default ``http://127.0.0.1:8080``,
where ``scripts/labelstudio.sh start`` serves) and ``LABEL_STUDIO_API_KEY`` (the user's legacy
API token). The key is never printed, logged or put in an error message.

Every SDK call goes through :meth:`LSClient.call`: calls that could not connect are retried
(tenacity, exponential back-off: a connection refused means the request was never sent, so a
retry cannot duplicate anything), and every failure becomes one :class:`RuptureError` that says
what to do: server down, wrong URL, wrong token, missing project, refused request.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..errors import RuptureError

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"

# Errors raised before a request reached the server: safe to retry for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class Settings:
    """Where the server is and how to authenticate. ``repr`` hides the key."""

    url: str
    api_key: str
    timeout: float = 60.0
    retries: int = 4

    def __repr__(self) -> str:
        return f"Settings(url={self.url!r}, api_key=<hidden>, timeout={self.timeout}, retries={self.retries})"

    @classmethod
    def from_env(cls, url: str | None = None, api_key: str | None = None, **kw: Any) -> "Settings":
        """Settings from arguments, else ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``."""
        url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).strip().rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RuptureError(f"{URL_ENV} must be an http(s) URL such as {DEFAULT_URL}, not '{url}'")
        key = api_key if api_key is not None else os.environ.get(KEY_ENV)
        if not key or not key.strip():
            raise RuptureError(
                f"{KEY_ENV} is not set: export the API token of your Label Studio user "
                "(Account & Settings > Legacy Token; for the local dev server started by "
                "scripts/labelstudio.sh it is LABEL_STUDIO_USER_TOKEN)"
            )
        return cls(url=url, api_key=key.strip(), **kw)


def _api_error_type() -> type[Exception]:
    from label_studio_sdk.core.api_error import ApiError

    return ApiError


def _short_detail(body: Any) -> str:
    """A short reason from an error body, without echoing submitted data (it may hold transcript
    text): a plain ``detail`` string, or the names of the fields that were refused."""
    if isinstance(body, dict):
        d = body.get("detail")
        if isinstance(d, str) and len(d) <= 160:
            return d
        fields = body.get("validation_errors") if isinstance(body.get("validation_errors"), dict) else body
        names = [k for k in fields if k not in ("id", "status_code", "version", "exc_info", "detail")]
        if names:
            return "invalid " + ", ".join(map(str, names[:5]))
    return ""


class LSClient:
    """A ``label_studio_sdk.LabelStudio`` client with retries and one-line errors.

    ``client.sdk`` is the SDK client; call it as ``client.call("what it does", fn, *args)``.
    """

    def __init__(self, settings: Settings | None = None):
        from label_studio_sdk import LabelStudio

        self.settings = settings or Settings.from_env()
        self.url = self.settings.url
        # max_retries=0: the SDK would retry on its own (also after a dropped connection, when a
        # POST may have gone through); retrying is decided here, in :meth:`call`, instead.
        self.sdk = LabelStudio(
            base_url=self.url, api_key=self.settings.api_key, timeout=self.settings.timeout, max_retries=0
        )
        self._checked = False

    def __repr__(self) -> str:
        return f"LSClient({self.url})"

    # -- the one door to the server -----------------------------------------------------
    def call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` (an SDK call); retry it while the server cannot be
        reached; turn any failure into a RuptureError about ``action``."""
        if not self._checked:
            self._checked = True
            self.check()
        return self._call(action, fn, *args, **kwargs)

    def _call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        ApiError = _api_error_type()
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(_NOT_SENT),
                stop=stop_after_attempt(max(1, self.settings.retries)),
                wait=wait_exponential(multiplier=0.5, max=4),
                reraise=True,
            ):
                with attempt:
                    return fn(*args, **kwargs)
        except _NOT_SENT as e:
            raise RuptureError(
                f"cannot reach Label Studio at {self.url} ({_reason(e)}) while {action}; "
                "is the server running? (rupture ls server start)"
            ) from None
        except httpx.TimeoutException:
            raise RuptureError(
                f"Label Studio at {self.url} did not answer within {self.settings.timeout:g} s while {action}"
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise RuptureError(f"{URL_ENV}={self.url} is not a URL Label Studio can be reached at") from None
        except httpx.TransportError as e:
            raise RuptureError(
                f"the connection to Label Studio at {self.url} broke while {action} "
                f"({type(e).__name__}); re-run: push and pull are safe to repeat"
            ) from None
        except ApiError as e:
            raise self._api_error(action, e) from None
        except (json.JSONDecodeError, ValueError) as e:
            # The SDK could not parse a 2xx answer: not a Label Studio API behind this URL.
            raise RuptureError(
                f"{self.url} gave an answer that is not Label Studio's API while {action} "
                f"({type(e).__name__}); check {URL_ENV}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _api_error(self, action: str, e: Any) -> RuptureError:
        code = getattr(e, "status_code", None)
        body = getattr(e, "body", None)
        if code == 401:
            return RuptureError(
                f"Label Studio at {self.url} rejected the API key (HTTP 401) while {action}: "
                f"set {KEY_ENV} to a valid token (Account & Settings > Legacy Token; legacy "
                "tokens must be enabled on the server)"
            )
        if code == 403:
            return RuptureError(f"the Label Studio user of {KEY_ENV} may not do this (HTTP 403) while {action}")
        if code == 404:
            if not isinstance(body, dict):  # an HTML page: the URL is not Label Studio's API root
                return RuptureError(
                    f"{self.url} does not look like a Label Studio server (HTTP 404 while {action}); check {URL_ENV}"
                )
            return RuptureError(f"not found on Label Studio at {self.url} (HTTP 404) while {action}")
        if isinstance(code, int) and code >= 500:
            return RuptureError(f"Label Studio at {self.url} failed (HTTP {code}) while {action}; see its log")
        detail = _short_detail(body)
        if isinstance(code, int) and 200 <= code < 300:
            return RuptureError(
                f"{self.url} gave an answer that is not Label Studio's API while {action}; check {URL_ENV}"
            )
        return RuptureError(
            f"Label Studio at {self.url} refused {action} (HTTP {code})" + (f": {detail}" if detail else "")
        )

    def check(self) -> dict[str, Any]:
        """Check URL and token with one cheap request (who am I); returns the user as a dict.

        Gives the clear errors: server down / not Label Studio / wrong token.
        """
        user = self._call("checking the connection", self.sdk.users.whoami)
        if not getattr(user, "id", None):
            raise RuptureError(f"{self.url} gave an answer that is not Label Studio's API; check {URL_ENV}")
        self._checked = True
        return {"id": user.id, "email": getattr(user, "email", None)}

    # -- helpers used by push and pull --------------------------------------------------
    def find_project(self, title: str) -> Any | None:
        """The project with exactly this title, or None. RuptureError if several have it."""
        pager = self.call(f"looking up project '{title}'", self.sdk.projects.list, title=title, page_size=100)
        found = self.call(f"looking up project '{title}'", lambda: [p for p in pager if p.title == title])
        if len(found) > 1:
            ids = ", ".join(str(p.id) for p in found)
            raise RuptureError(f"{len(found)} projects are titled '{title}' (ids {ids}); rename all but one")
        return found[0] if found else None

    def require_project(self, title: str) -> Any:
        """The project titled ``title``; RuptureError naming the title if there is none."""
        p = self.find_project(title)
        if p is None:
            raise RuptureError(f"no project titled '{title}' on Label Studio at {self.url}")
        return p

    def user_emails(self) -> dict[int, str]:
        """User id -> email of every user the token may see."""
        users = self.call("listing users", lambda: list(self.sdk.users.list()))
        return {int(u.id): (u.email or f"user-{u.id}") for u in users}


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if "refused" in text.lower():
        return "connection refused"
    if "name or service" in text.lower() or "nodename" in text.lower():
        return "unknown host"
    return text[:80]


def connect(
    url: str | None = None, api_key: str | None = None, *, retries: int | None = None, timeout: float | None = None
) -> LSClient:
    """An :class:`LSClient` from arguments or the environment; checks URL and token right away."""
    kw: dict[str, Any] = {}
    if retries is not None:
        kw["retries"] = retries
    if timeout is not None:
        kw["timeout"] = timeout
    client = LSClient(Settings.from_env(url, api_key, **kw))
    client.check()
    return client
