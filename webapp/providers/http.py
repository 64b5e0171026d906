"""Outbound HTTP shared by the adapters: pooled, timed out, retried only when safe.

A gateway send is not idempotent, so a retry is only made when it cannot
duplicate a message: a connect error (nothing reached the gateway), a 5xx or
a 429 (the gateway says it did not take it). When the request went out and
the answer was lost (read timeout, dropped connection, unreadable 2xx) the
gateway may have the message: the adapter's lookup() decides, and when it
cannot tell the result is returned with ``ambiguous=True`` for a person or a
later reconciliation to settle.

A 429 waits at least its Retry-After, and longer as refusals repeat (the backoff, with Retry-After as its
floor). A caller that paces many sends itself (the dialer) asks for rate limits to be handed back at once
(`retry_rate_limited=False`), so that it can slow every worker down instead of one thread sleeping.
"""
from __future__ import annotations

import dataclasses
import email.utils
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.auth import HTTPDigestAuth, _basic_auth_str

from .base import (
    LookupOutcome,
    LookupResult,
    MediaDownload,
    MediaError,
    MediaTooLarge,
    Outcome,
    ProviderAdapter,
    ProviderConfig,
    SendResult,
)

USER_AGENT = "Conversa/1.0"
FINAL_OUTCOMES = frozenset({Outcome.SENT, Outcome.PERMANENT, Outcome.OPTED_OUT})

Classifier = Callable[[requests.Response], SendResult]
Lookup = Callable[[], LookupResult]


class GatewayError(Exception):
    """A read-only call (lookup, poll) that failed after its retries."""


class RateLimitedError(GatewayError):
    """A read-only call the gateway kept refusing as too many requests: ask again after `retry_after`."""

    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def rate_limited(response: requests.Response, error_code: str, message: str | None = None,
                 pair_wait: float | None = None) -> SendResult:
    """A "too many requests" answer: not processed, to be sent again after its Retry-After. With `pair_wait`
    the limit is the recipient's alone (too many to one number), waiting that long when no Retry-After says."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if pair_wait is not None and retry_after is None:
        retry_after = pair_wait
    return SendResult(Outcome.RATE_LIMITED, error_code=error_code, error_message=message, retry_after=retry_after,
                      per_recipient=pair_wait is not None)


def _is_connect_error(exc: BaseException) -> bool:
    """True when the connection was never made, so the gateway cannot have seen the request."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, requests.exceptions.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
            return True  # NewConnectionError and NameResolutionError are subclasses
        if isinstance(err, urllib3.exceptions.MaxRetryError) and err.reason is not None:
            stack.append(err.reason)
        stack.extend(a for a in err.args if isinstance(a, BaseException))
        for linked in (err.__cause__, err.__context__):
            if linked is not None:
                stack.append(linked)
    return False


class DigestOrBasicAuth(HTTPDigestAuth):
    """Digest auth that switches to Basic when the gateway's challenge asks for Basic (older Dinstar firmware)."""

    def __init__(self, username: str, password: str):
        super().__init__(username, password)
        self.use_basic = False

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.use_basic:
            r.headers["Authorization"] = _basic_auth_str(self.username, self.password)
            return r
        return super().__call__(r)

    def handle_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        challenge = r.headers.get("www-authenticate", "").strip().lower()
        already_basic = str(r.request.headers.get("Authorization", "")).startswith("Basic ")
        if r.status_code == 401 and challenge.startswith("basic") and not already_basic:
            self.use_basic = True
            r.content  # noqa: B018 - drain the body so the connection can be reused
            r.close()
            retry = r.request.copy()
            retry.headers["Authorization"] = _basic_auth_str(self.username, self.password)
            response = r.connection.send(retry, **kwargs)
            response.history.append(r)
            response.request = retry
            return response
        return super().handle_401(r, **kwargs)


class HttpClient:
    """One pooled session per adapter instance, with the retry rules above."""

    def __init__(self, *, timeout: float = 10.0, connect_timeout: float | None = None, max_attempts: int = 3,
                 backoff: float = 0.5, max_backoff: float = 30.0, max_retry_wait: float = 30.0,
                 retry_rate_limited: bool = True,
                 sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random,
                 auth: requests.auth.AuthBase | tuple[str, str] | None = None,
                 headers: dict[str, str] | None = None, pool_size: int = 10):
        self.timeouts = (min(timeout, 5.0) if connect_timeout is None else connect_timeout, timeout)
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_retry_wait
        self.retry_rate_limited = retry_rate_limited
        self.sleep = sleep
        self.rng = rng
        self.session = requests.Session()
        # requests re-reads proxy variables and ~/.netrc on every call when trust_env is on (about 1 ms a
        # request, a third of a bulk send's CPU). Read the environment once per host instead: the same
        # proxies and CA bundle apply; credentials always come from the provider, never from netrc.
        self.session.trust_env = False
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies: dict[str, dict[str, str]] = {}
        self._templates: dict[tuple[str, str], requests.PreparedRequest] = {}
        pool = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", pool)
        self.session.mount("https://", pool)
        self.session.headers["User-Agent"] = USER_AGENT
        if headers:
            self.session.headers.update(headers)
        if auth is not None:
            self.session.auth = auth

    def close(self) -> None:
        self.session.close()

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The environment's proxies for this URL's scheme and host (HTTP_PROXY, NO_PROXY...), read once."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        proxies = self._proxies.get(key)
        if proxies is None:
            proxies = self._proxies[key] = requests.utils.get_environ_proxies(url)
        return proxies

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """session.request(), without re-preparing what is the same for every call to this URL.

        Session.prepare_request merges the session's headers, params, auth and hooks anew on each
        call, and requests' runtime-checked protocols make that the largest part of a bulk send's CPU
        (measured: a third of a worker's time in requests). A form or JSON body to a fixed URL, with
        the session's own headers and Basic auth, is prepared once per URL and copied; anything else
        (query parameters, extra headers, digest auth, cookies the gateway set) takes requests' path.
        """
        send = {"timeout": self.timeouts, "proxies": self._proxies_for(url)}
        body_only = kwargs.keys() <= {"data", "json"}
        if not body_only or self.session.cookies or not isinstance(self.session.auth, tuple | type(None)):
            return self.session.request(method, url, **kwargs, **send)
        template = self._templates.get((method, url))
        if template is None:
            template = self._templates[(method, url)] = self.session.prepare_request(requests.Request(method, url))
        prepared = template.copy()
        prepared.prepare_body(kwargs.get("data"), None, kwargs.get("json"))
        return self.session.send(prepared, allow_redirects=True, stream=False, verify=self.session.verify,
                                 cert=None, **send)

    # -- timing ----------------------------------------------------------
    def delay_before(self, attempt: int, result: SendResult) -> float | None:
        """Seconds to wait before attempt number `attempt + 1`; None when waiting would be too long.

        The backoff grows with each attempt; a rate limit's Retry-After is its floor, never a replacement
        (a gateway saying "1 second" to every one of five tries must not get five tries in five seconds)."""
        base = self.backoff * (2 ** (attempt - 1))
        wait = min(self.max_backoff, base * (1.0 + 0.2 * self.rng()))
        if result.outcome is Outcome.RATE_LIMITED:
            wait = max(wait, result.retry_after or 0.0)
            if wait > self.max_retry_wait:
                return None  # the caller reschedules instead of holding a worker
        return wait

    def send_delay(self, attempt: int, result: SendResult) -> float | None:
        """delay_before() for a send: None also for a rate limit when the caller paces sends itself."""
        if result.outcome is Outcome.RATE_LIMITED and not self.retry_rate_limited:
            return None
        return self.delay_before(attempt, result)

    # -- one request -------------------------------------------------------
    def attempt(self, method: str, url: str, classify: Classifier, **kwargs: Any) -> SendResult:
        """One request, classified; transport failures become TEMPORARY (ambiguous when they may have landed)."""
        try:
            response = self.request(method, url, **kwargs)
        except requests.exceptions.ReadTimeout as exc:
            return SendResult(Outcome.TEMPORARY, error_code="timeout", error_message=str(exc), ambiguous=True)
        except requests.exceptions.ConnectionError as exc:
            if _is_connect_error(exc):
                return SendResult(Outcome.TEMPORARY, error_code="connect", error_message=str(exc))
            return SendResult(Outcome.TEMPORARY, error_code="connection", error_message=str(exc), ambiguous=True)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            return SendResult(Outcome.TEMPORARY, error_code="connection", error_message=str(exc), ambiguous=True)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader) as exc:
            return SendResult(Outcome.PERMANENT, error_code="config", error_message=str(exc))
        except requests.exceptions.RequestException as exc:
            return SendResult(Outcome.TEMPORARY, error_code="http", error_message=str(exc), ambiguous=True)
        with response:
            try:
                return classify(response)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                # A 2xx we cannot read may still be an accepted message.
                return SendResult(Outcome.TEMPORARY, error_code="malformed",
                                  error_message=f"HTTP {response.status_code}: unreadable answer ({exc})",
                                  ambiguous=200 <= response.status_code < 300)

    # -- a send, with its retries ------------------------------------------
    def send(self, method: str, url: str, classify: Classifier, *, lookup: Lookup | None = None,
             idempotent: bool = False, **kwargs: Any) -> SendResult:
        """Send with retries; an ambiguous failure is reconciled with `lookup` before any retry."""
        attempts = 0
        while True:
            attempts += 1
            result = self.attempt(method, url, classify, **kwargs)
            if result.outcome in FINAL_OUTCOMES:
                return dataclasses.replace(result, attempts=attempts)
            if result.ambiguous and not idempotent:
                found = reconcile(lookup)
                if found.outcome is LookupOutcome.FOUND:
                    return SendResult(Outcome.SENT, provider_message_id=found.provider_message_id,
                                      status=found.status, attempts=attempts)
                if found.outcome is not LookupOutcome.NOT_FOUND:
                    return dataclasses.replace(result, attempts=attempts)
                result = dataclasses.replace(result, ambiguous=False)
            if attempts >= self.max_attempts:
                return dataclasses.replace(result, attempts=attempts)
            wait = self.send_delay(attempts, result)
            if wait is None:
                return dataclasses.replace(result, attempts=attempts)
            self.sleep(wait)

    # -- read-only calls ---------------------------------------------------
    def fetch(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """An idempotent call (lookup, poll): retried on any transport error, 5xx and 429.

        Returns the response for any other status; raises GatewayError when it never got one
        (RateLimitedError when the last answer was a 429).
        """
        last = ""
        retry_after: float | None = None
        limited = False
        for attempt in range(1, self.max_attempts + 1):
            retry_after, limited = None, False
            try:
                response = self.request(method, url, **kwargs)
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as exc:
                raise GatewayError(str(exc)) from exc
            except requests.exceptions.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                last = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    limited = True
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
            if attempt < self.max_attempts:
                wait = self.delay_before(attempt, SendResult(
                    Outcome.RATE_LIMITED if retry_after is not None else Outcome.TEMPORARY,
                    retry_after=retry_after))
                if wait is None:
                    break
                self.sleep(wait)
        if limited:
            raise RateLimitedError(last, retry_after)
        raise GatewayError(last)


def reconcile(lookup: Lookup | None) -> LookupResult:
    """Ask the gateway about an ambiguous send; any failure to ask means UNKNOWN."""
    if lookup is None:
        return LookupResult(LookupOutcome.UNKNOWN)
    try:
        return lookup()
    except Exception:  # noqa: BLE001 - a failed lookup must never turn into a resend
        return LookupResult(LookupOutcome.UNKNOWN)


class HttpAdapter(ProviderAdapter):
    """Base for adapters that talk HTTP: owns the pooled client and the injectable sleep."""

    pool_size = 10  # connections the session keeps; the dialer raises it to its threads (one session for all)

    def __init__(self, config: ProviderConfig, *, timeout: float = 10.0, max_attempts: int = 3,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 max_retry_wait: float = 30.0, connect_timeout: float | None = None,
                 retry_rate_limited: bool = True):
        super().__init__(config, timeout=timeout, max_attempts=max_attempts, backoff=backoff)
        self.sleep = sleep
        self.max_retry_wait = max_retry_wait
        self.connect_timeout = connect_timeout
        self.retry_rate_limited = retry_rate_limited
        self._http: HttpClient | None = None

    def _auth(self) -> requests.auth.AuthBase | tuple[str, str] | None:
        return None

    def _headers(self) -> dict[str, str]:
        return {}

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(timeout=self.timeout, connect_timeout=self.connect_timeout,
                                    max_attempts=self.max_attempts, backoff=self.backoff,
                                    max_retry_wait=self.max_retry_wait, sleep=self.sleep,
                                    retry_rate_limited=self.retry_rate_limited,
                                    auth=self._auth(), headers=self._headers(), pool_size=self.pool_size)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def replace(self, **changes: Any) -> ProviderAdapter:
        return type(self)(dataclasses.replace(self.config, **changes), timeout=self.timeout,
                          max_attempts=self.max_attempts, backoff=self.backoff, sleep=self.sleep,
                          max_retry_wait=self.max_retry_wait, connect_timeout=self.connect_timeout,
                          retry_rate_limited=self.retry_rate_limited)

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    default_base_url = ""

    def read_pages(self, url: str, params: dict[str, str], *, items: str, next_url: Callable[[dict[str, Any]], Any],
                   read: Callable[[Any], Any], what: str, max_pages: int = 50,
                   error_text: Callable[[requests.Response], str] = lambda r: r.text[:200]) -> list[Any]:
        """Every item of a paged JSON list: `items` names the page's list, `next_url(page)` the next page's
        absolute URL (which carries the parameters). An item `read` cannot read is skipped and logged."""
        from . import payload

        found: list[Any] = []
        next_page: str | None = url
        query: dict[str, str] | None = params
        for _ in range(max_pages):
            if next_page is None:
                return found
            response = self.http.fetch("GET", next_page, params=query)
            with response:
                if response.status_code != 200:
                    raise GatewayError(f"{what}: HTTP {response.status_code} {error_text(response)}")
                page = response.json()
            if not isinstance(page, dict):
                raise GatewayError(f"{what}: the answer is not a JSON object")
            found += payload.each(payload.as_list(page.get(items), f"{what} {items}"), read,
                                  f"provider {self.config.id} {what}")
            next_page, query = payload.text(next_url(page)) or None, None
        raise GatewayError(f"{what}: more than {max_pages} pages")

    def open_download(self, url: str, what: str, max_size: int | None = None, **kwargs: Any) -> MediaDownload:
        """GET a file as a stream (retried on transport errors, 5xx and 429 like any read); a 404 or 410 is
        permanent (the gateway no longer has it), any other refusal may pass on a later try. A declared
        length over `max_size` ends it before the body is read."""
        try:
            response = self.http.fetch("GET", url, stream=True, **kwargs)
        except GatewayError as exc:
            raise MediaError(f"{what}: {exc}") from exc
        if response.status_code != 200:
            response.close()
            raise MediaError(f"{what}: HTTP {response.status_code}", permanent=response.status_code in (404, 410))
        length = response.headers.get("Content-Length", "")
        if max_size is not None and length.isdigit() and int(length) > max_size:
            response.close()
            raise MediaTooLarge(int(length), max_size)
        return MediaDownload(chunks=response.iter_content(64 * 1024),
                             content_type=response.headers.get("Content-Type", ""),
                             size=int(length) if length.isdigit() else None, close=response.close)


def utc_now() -> datetime:
    return datetime.now(UTC)
