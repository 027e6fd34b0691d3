"""wsgisession: sessions, signed cookies and request state for any WSGI app.

Wrap an application in :class:`SessionMiddleware` and use :data:`session` (or
``environ["wsgisession.session"]``) like a dict. Everything public is re-exported
here; errors live in :mod:`wsgisession.errors`.
"""

from .config import from_config as from_config
from .config import store_from_url as store_from_url
from .context import get_session as get_session
from .context import session as session
from .cookies import CookieOptions as CookieOptions
from .cookies import get_signed_cookie as get_signed_cookie
from .cookies import set_signed_cookie as set_signed_cookie
from .middleware import SessionMiddleware as SessionMiddleware
from .sessions import Session as Session
from .stores import CookieStore as CookieStore
from .stores import LRUStore as LRUStore
from .stores import RedisStore as RedisStore
from .stores import ServerSessionStore as ServerSessionStore
from .stores import SessionStore as SessionStore
from .stores import SQLiteStore as SQLiteStore

__version__ = "0.1.0.dev0"
