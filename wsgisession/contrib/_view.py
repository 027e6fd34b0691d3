"""A mapping that forwards everything to a wsgisession Session.

The Flask and Django integrations each expose the framework's own session API;
both are this view plus the framework's extras.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sessions import Session


class SessionView(MutableMapping[str, Any]):
    """Every mapping operation goes to :attr:`session`.

    :param session: The wsgisession session of the request.
    """

    def __init__(self, session: Session) -> None:
        #: The wsgisession :class:`~wsgisession.Session` behind this one.
        self.session = session

    def __getitem__(self, key: str) -> Any:
        return self.session[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.session[key] = value

    def __delitem__(self, key: str) -> None:
        del self.session[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.session)

    def __len__(self) -> int:
        return len(self.session)

    def __contains__(self, key: object) -> bool:
        return key in self.session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.session!r}>"

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]`` if *key* is set, else *default*."""
        return self.session.get(key, default)
