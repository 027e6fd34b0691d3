"""wsgisession: sessions, signed cookies and request state for any WSGI app.

Wrap an application in :class:`SessionMiddleware` and use :data:`session` (or
``environ["wsgisession.session"]``) like a dict. Everything public is re-exported
here and listed in ``__all__`` (a test keeps that list, the API reference and the
package's names equal); the errors are defined in :mod:`wsgisession.errors`.
"""

from .access._view_guards import guarded as guarded
from .access._view_guards import login_required as login_required
from .access.csrf import CsrfMiddleware as CsrfMiddleware
from .access.csrf import csrf_token as csrf_token
from .access.devices import SessionInfo as SessionInfo
from .access.devices import ended_elsewhere as ended_elsewhere
from .access.devices import forget_device as forget_device
from .access.devices import logout_everywhere as logout_everywhere
from .access.devices import record_login as record_login
from .access.devices import revoke as revoke
from .access.devices import revoke_all as revoke_all
from .access.devices import sessions_of as sessions_of
from .access.devices import track_devices as track_devices
from .access.fresh import FreshLogin as FreshLogin
from .access.fresh import fresh_login_required as fresh_login_required
from .access.guards import Auth as Auth
from .access.guards import AuthRedirect as AuthRedirect
from .access.guards import Guard as Guard
from .access.guards import GuardContext as GuardContext
from .access.guards import safe_next as safe_next
from .access.login import AuthInfo as AuthInfo
from .access.login import current_user as current_user
from .access.login import login as login
from .access.login import logout as logout
from .config import from_config as from_config
from .config import store_from_url as store_from_url
from .context import at as at
from .context import get_session as get_session
from .context import session as session
from .cookies import CookieOptions as CookieOptions
from .cookies import get_signed_cookie as get_signed_cookie
from .cookies import set_signed_cookie as set_signed_cookie
from .errors import AccessDenied as AccessDenied
from .errors import AmbiguousSession as AmbiguousSession
from .errors import BadBody as BadBody
from .errors import BadParam as BadParam
from .errors import ConfigurationError as ConfigurationError
from .errors import CsrfError as CsrfError
from .errors import FieldError as FieldError
from .errors import HTTPError as HTTPError
from .errors import NotLoggedIn as NotLoggedIn
from .errors import SessionError as SessionError
from .errors import SessionTooLarge as SessionTooLarge
from .errors import StoreUnavailable as StoreUnavailable
from .errors import TooManySessions as TooManySessions
from .events import EventName as EventName
from .events import SessionEvent as SessionEvent
from .limits import RequestLimits as RequestLimits
from .messages import FlashLevel as FlashLevel
from .messages import FlashMessage as FlashMessage
from .messages import flash as flash
from .messages import get_flashed_message as get_flashed_message
from .messages import get_flashed_messages as get_flashed_messages
from .messages import peek_flashed_messages as peek_flashed_messages
from .middleware import SessionMiddleware as SessionMiddleware
from .request.body import Validation as Validation
from .request.body import body as body
from .request.body import catch_http_errors as catch_http_errors
from .request.body import rules as rules
from .request.body import validate_body as validate_body
from .request.params import RequestScope as RequestScope
from .request.params import at_json as at_json
from .request.params import optional_param as optional_param
from .request.params import param as param
from .request.params import params as params
from .request.params import register_converter as register_converter
from .request.params import set_path_params as set_path_params
from .request.params import unregister_converter as unregister_converter
from .sessions import Session as Session
from .stores import ClientSessionStore as ClientSessionStore
from .stores import CookieStore as CookieStore
from .stores import LRUStore as LRUStore
from .stores import PostgresStore as PostgresStore
from .stores import RedisStore as RedisStore
from .stores import ServerSessionStore as ServerSessionStore
from .stores import SessionIndex as SessionIndex
from .stores import SQLiteStore as SQLiteStore
from .vars import RequestVar as RequestVar
from .vars import SessionVar as SessionVar

__all__ = [
    "AccessDenied",
    "AmbiguousSession",
    "Auth",
    "AuthInfo",
    "AuthRedirect",
    "BadBody",
    "BadParam",
    "ClientSessionStore",
    "ConfigurationError",
    "CookieOptions",
    "CookieStore",
    "CsrfError",
    "CsrfMiddleware",
    "EventName",
    "FieldError",
    "FlashLevel",
    "FlashMessage",
    "FreshLogin",
    "Guard",
    "GuardContext",
    "HTTPError",
    "LRUStore",
    "NotLoggedIn",
    "PostgresStore",
    "RedisStore",
    "RequestLimits",
    "RequestScope",
    "RequestVar",
    "SQLiteStore",
    "ServerSessionStore",
    "Session",
    "SessionError",
    "SessionEvent",
    "SessionIndex",
    "SessionInfo",
    "SessionMiddleware",
    "SessionTooLarge",
    "SessionVar",
    "StoreUnavailable",
    "TooManySessions",
    "Validation",
    "at",
    "at_json",
    "body",
    "catch_http_errors",
    "csrf_token",
    "current_user",
    "ended_elsewhere",
    "flash",
    "forget_device",
    "fresh_login_required",
    "from_config",
    "get_flashed_message",
    "get_flashed_messages",
    "get_session",
    "get_signed_cookie",
    "guarded",
    "login",
    "login_required",
    "logout",
    "logout_everywhere",
    "optional_param",
    "param",
    "params",
    "peek_flashed_messages",
    "record_login",
    "register_converter",
    "revoke",
    "revoke_all",
    "rules",
    "safe_next",
    "session",
    "sessions_of",
    "set_path_params",
    "set_signed_cookie",
    "store_from_url",
    "track_devices",
    "unregister_converter",
    "validate_body",
]

__version__ = "1.0.0rc1"
