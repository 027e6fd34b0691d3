"""A small HTTP client for load tests: one keep-alive connection per thread."""

from __future__ import annotations

from dataclasses import dataclass

from ..servers import Gunicorn


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    #: The value of each ``session`` Set-Cookie ("" when it deletes the cookie).
    session_cookies: tuple[str, ...]
    retry_after: str | None = None


class Browser:
    """Sends requests with a fixed session cookie (or none) over one connection."""

    def __init__(self, server: Gunicorn, cookie: str | None = None) -> None:
        self.server = server
        self.cookie = cookie
        self.conn = server.connection()

    def get(self, path: str) -> Answer:
        headers = {"Cookie": f"session={self.cookie}"} if self.cookie else {}
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        cookies = []
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            if name.strip() == "session":
                cookies.append(value.strip().strip('"'))
        if response.will_close:
            self.conn.close()
            self.conn = self.server.connection()
        return Answer(response.status, body, tuple(cookies), response.getheader("Retry-After"))

    def login(self, path: str = "/login") -> str:
        """Start a session on *path* and keep its cookie."""
        answer = self.get(path)
        assert answer.status == 200, answer
        (self.cookie,) = answer.session_cookies
        return self.cookie

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def login(server: Gunicorn, path: str = "/login") -> str:
    """The cookie of a new session started on *path*."""
    with Browser(server) as browser:
        return browser.login(path)


def get_once(server: Gunicorn, path: str, cookie: str | None = None) -> Answer:
    """One request on a connection of its own."""
    with Browser(server, cookie) as browser:
        return browser.get(path)
