"""Django's expiry API (``set_expiry`` and its getters) over a session's ``max_age``."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from django.utils import timezone

from ...cookies import MAX_COOKIE_AGE
from . import _config

if TYPE_CHECKING:
    from ...middleware import SessionMiddleware as CoreMiddleware
    from ...sessions import Session

__all__ = ["UNSET", "DjangoExpiry"]

#: What ``DjangoSession`` holds before a value is known.
UNSET: Any = object()


class DjangoExpiry:
    """The expiry methods of Django's ``SessionBase``, for ``DjangoSession``.

    ``set_expiry()``, ``get_expiry_age()``, ``get_expiry_date()``,
    ``get_expire_at_browser_close()`` and ``get_session_cookie_age()``. Django keeps
    the expiry in the session (``_session_expiry``); here it is the session's own
    ``max_age``, which the middleware applies to the cookie and the store. The class
    that mixes this in sets ``_expiry`` (:data:`UNSET` until ``set_expiry()``) and
    ``_expired``.
    """

    session: Session
    _expiry: Any
    _expired: bool

    @property
    def middleware(self) -> CoreMiddleware:
        """The session middleware that loads and saves this session."""
        raise NotImplementedError

    def _touch(self, write: bool = False) -> None:
        raise NotImplementedError

    def _expiry_setting(self) -> Any:
        # What Django keeps in session["_session_expiry"]: None (the default), 0 (the
        # browser session), seconds, or a datetime.
        if self._expiry is not UNSET:
            return self._expiry
        if not self.session.has_own_max_age:
            return None
        return self.session.max_age or 0

    def get_session_cookie_age(self) -> int:
        """The default session lifetime: ``WSGISESSION["max_age"]`` or ``SESSION_COOKIE_AGE``."""
        max_age = self.middleware.cookie.max_age
        return max_age if max_age is not None else _config.cookie_age({})

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds from the last change (*modification*, default now) to expiry.

        :param kwargs: Django's ``modification`` and ``expiry``.
        """
        modification = kwargs.get("modification") or timezone.now()
        expiry: Any = kwargs["expiry"] if "expiry" in kwargs else self._expiry_setting()
        if not expiry:
            return self.get_session_cookie_age()
        if isinstance(expiry, str):
            expiry = datetime.fromisoformat(expiry)
        if not isinstance(expiry, datetime):
            return int(expiry)
        delta: timedelta = expiry - modification
        return delta.days * 86400 + delta.seconds

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """When the session expires if it is not used after *modification* (default now).

        :param kwargs: Django's ``modification`` and ``expiry``.
        """
        modification: datetime = kwargs.get("modification") or timezone.now()
        expiry: Any = kwargs["expiry"] if "expiry" in kwargs else self._expiry_setting()
        if isinstance(expiry, datetime):
            return expiry
        if isinstance(expiry, str):
            return datetime.fromisoformat(expiry)
        return modification + timedelta(seconds=expiry or self.get_session_cookie_age())

    def get_expire_at_browser_close(self) -> bool:
        """Whether the cookie ends with the browser session."""
        expiry = self._expiry_setting()
        if expiry is None:
            return bool(_config.core_middleware().cookie.max_age is None)
        return bool(expiry == 0)

    def set_expiry(self, value: int | datetime | timedelta | None) -> None:
        """Set this session's lifetime, kept with the session from now on.

        - an ``int``: expires after that many seconds of inactivity;
        - a ``datetime`` or ``timedelta``: expires then (or after that long); kept as
          an inactivity timeout of the seconds left, renewed while the session is used;
        - ``0``: the cookie ends when the browser closes;
        - ``None``: back to the default (``SESSION_COOKIE_AGE``, ``max_age``).

        A lifetime already over ends the session when it is saved. One over
        :data:`~wsgisession.cookies.MAX_COOKIE_AGE` (400 days, the longest browsers
        keep a cookie) is clamped to it, however far off: the getters then report
        the 400 days.
        """
        self._touch(write=True)
        self._expired = False
        session = self.session
        if value is None:
            self._expiry = None
            session.reset_max_age()
            return
        if isinstance(value, timedelta):
            delta = value
            try:
                value = timezone.now() + delta
            except OverflowError:
                # Past year 9999 or before year 1: as long as allowed, or already over.
                value = MAX_COOKIE_AGE if delta > timedelta(0) else -1
        if isinstance(value, datetime):
            now = datetime.now(value.tzinfo) if value.tzinfo else datetime.now()
            seconds = math.ceil((value - now).total_seconds())
        else:
            seconds = int(cast("int", value))
        if seconds > MAX_COOKIE_AGE:
            # Kept as seconds: the getters then report the lifetime the session really
            # has, and get_expiry_date() never builds a date past year 9999.
            value = seconds = MAX_COOKIE_AGE
        elif seconds < -MAX_COOKIE_AGE and not isinstance(value, datetime):
            value = seconds = -MAX_COOKIE_AGE  # as over, and a date before year 1 is none
        self._expiry = value
        if seconds == 0 and not isinstance(value, datetime):
            session.max_age = None
        elif seconds <= 0:
            self._expired = True
        else:
            session.max_age = seconds
