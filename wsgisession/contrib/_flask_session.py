"""``flask.session``: Flask's session API over a wsgisession :class:`~wsgisession.Session`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask.sessions import SessionMixin

from ._view import SessionView

if TYPE_CHECKING:
    from ..sessions import Session

__all__ = ["FlaskSession"]


class FlaskSession(SessionView, SessionMixin):
    """``flask.session``: Flask's session API over a :class:`~wsgisession.Session`.

    Every mapping operation goes to the wsgisession session (:attr:`session`), which
    is also :data:`wsgisession.session` during the request. :meth:`clear`,
    :meth:`regenerate` and :meth:`invalidate` are the wsgisession ones.

    :param session: The wsgisession session of the request.
    :param lifetime: The ``max_age`` a permanent session gets (seconds).
    """

    def __init__(self, session: Session, *, lifetime: int | None) -> None:
        super().__init__(session)
        self._lifetime = lifetime
        self._accessed = False
        self._refresh_loaded = False
        self._forced = False
        self._writes_seen = 0

    def load_for_renewal(self) -> None:
        """Load the session so that a permanent one is renewed, without counting as a use.

        Flask renews a permanent session on every request
        (``SESSION_REFRESH_EACH_REQUEST``) but reports it as accessed only when the
        app used it.
        """
        self.session.new  # noqa: B018 - the property loads it
        self._refresh_loaded = True

    def clear(self) -> None:
        """Remove every key; data set afterwards gets a new session id."""
        self.session.clear()

    def regenerate(self) -> None:
        """Keep the data under a new session id (call it when privileges change)."""
        self.session.regenerate()

    def invalidate(self) -> None:
        """End the session now, in the store too (logout)."""
        self.session.invalidate()

    @property
    def permanent(self) -> bool:
        """``True`` when the session cookie outlives the browser.

        Setting it to ``True`` gives the session a lifetime of
        ``PERMANENT_SESSION_LIFETIME`` (or the ``max_age`` given to :func:`init_app`),
        remembered with the session; ``False`` makes its cookie end with the browser.
        """
        return self.session.max_age is not None

    @permanent.setter
    def permanent(self, value: bool) -> None:
        wanted = self._lifetime if value else None
        if self.session.max_age != wanted:
            self.session.max_age = wanted

    @property
    def new(self) -> bool:  # type: ignore[override]
        """``True`` when the client had no valid session (loads the session)."""
        return self.session.new

    @property
    def modified(self) -> bool:
        """Whether the session was written during this request (or set ``True``).

        A change in place to a nested value counts too, compared by content; it is
        saved whatever this says.
        """
        session = self.session
        if self._forced or (session.accessed and session.write_count > self._writes_seen):
            return True
        return session.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._forced = bool(value)
        if not value:
            self._writes_seen = self.session.write_count

    @property
    def resend(self) -> bool:
        """Whether Flask's rule re-sends the cookie (a write, even of an equal value).

        ``True`` when the request wrote the session or set :attr:`modified`.
        """
        return self._forced or self.session.has_unsaved_writes

    @property
    def accessed(self) -> bool:
        """Whether the request used the session (``flask.session`` or wsgisession's)."""
        return self._accessed or (self.session.accessed and not self._refresh_loaded)

    @accessed.setter
    def accessed(self, value: bool) -> None:
        # Flask sets it each time flask.session is used in the request.
        self._accessed = bool(value)
