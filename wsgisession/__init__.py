"""wsgisession: sessions, signed cookies and request state for any WSGI app.

Wrap an application in :class:`SessionMiddleware` and use :data:`session` (or
``environ["wsgisession.session"]``) like a dict. Everything public is re-exported
here; errors live in :mod:`wsgisession.errors`.
"""

from .auth import AuthInfo as AuthInfo
from .auth import current_user as current_user
from .auth import login as login
from .auth import logout as logout
from .body import Validation as Validation
from .body import body as body
from .body import catch_http_errors as catch_http_errors
from .body import rules as rules
from .body import validate_body as validate_body
from .config import from_config as from_config
from .config import store_from_url as store_from_url
from .context import at as at
from .context import get_session as get_session
from .context import session as session
from .cookies import CookieOptions as CookieOptions
from .cookies import get_signed_cookie as get_signed_cookie
from .cookies import set_signed_cookie as set_signed_cookie
from .csrf import CsrfMiddleware as CsrfMiddleware
from .csrf import csrf_token as csrf_token
from .errors import BadBody as BadBody
from .errors import FieldError as FieldError
from .flash import FlashLevel as FlashLevel
from .flash import FlashMessage as FlashMessage
from .flash import flash as flash
from .flash import get_flashed_message as get_flashed_message
from .flash import get_flashed_messages as get_flashed_messages
from .flash import peek_flashed_messages as peek_flashed_messages
from .guards import Auth as Auth
from .guards import AuthRedirect as AuthRedirect
from .guards import Guard as Guard
from .guards import GuardContext as GuardContext
from .guards import guarded as guarded
from .guards import login_required as login_required
from .guards import safe_next as safe_next
from .middleware import SessionMiddleware as SessionMiddleware
from .request import RequestScope as RequestScope
from .request import at_json as at_json
from .request import param as param
from .request import paramo as paramo
from .request import params as params
from .request import register_converter as register_converter
from .request import set_path_params as set_path_params
from .sessions import Session as Session
from .stores import CookieStore as CookieStore
from .stores import LRUStore as LRUStore
from .stores import PostgresStore as PostgresStore
from .stores import RedisStore as RedisStore
from .stores import ServerSessionStore as ServerSessionStore
from .stores import SessionStore as SessionStore
from .stores import SQLiteStore as SQLiteStore
from .vars import RequestVar as RequestVar
from .vars import SessionVar as SessionVar

__version__ = "0.1.0.dev0"
