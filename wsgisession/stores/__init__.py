"""Session stores: where session data lives between requests.

See :mod:`wsgisession.stores.base` for the two families and how to write your own.
"""

from .base import ClientSessionStore as ClientSessionStore
from .base import CookieCodec as CookieCodec
from .base import IndexEntry as IndexEntry
from .base import ServerSessionStore as ServerSessionStore
from .base import SessionIndex as SessionIndex
from .cookie import CookieStore as CookieStore
from .memory import LRUStore as LRUStore
from .postgres import PostgresStore as PostgresStore
from .redis import RedisStore as RedisStore
from .sqlite import SQLiteStore as SQLiteStore
