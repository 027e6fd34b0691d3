"""Views of the Django demo: Django forms, auth, messages and request.session.

The site is the one the other variants serve (``demo/common.py`` has its words), so
where Django's defaults differ the demo says what the others say: the field errors,
the error pages, a ``303`` to the login page, JSON for ``/api/`` requests (the cart
API reads its body with wsgisession's ``body()``, as the others do). API tokens, the
sessions carried in the ``X-Auth-Token`` header, log in with auth's ``login()`` and
pass Django's CSRF check as they pass wsgisession's (:class:`CsrfViewMiddleware`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware import csrf
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from jinja2 import Environment
from jinja2.utils import htmlsafe_json_dumps

from demo.common import (
    API_LOGGED_OUT,
    API_LOGIN_FIRST,
    DEVICES_NOT_LISTED,
    DEVICES_UNAVAILABLE,
    ERROR_TITLES,
    LOGIN_NEEDED,
    SESSION_MAX_AGE,
    SIGNED_IN_COOKIE,
    SIGNED_OUT_ELSEWHERE,
    CartItem,
    Credentials,
    TokenHeaderMissing,
    WrongCredentials,
    api_logged_in,
    csrf_message,
    device_rows,
    error_json,
    error_message,
    field_errors,
    log,
    token_panel,
    wants_json,
)
from wsgisession import (
    body,
    catch_http_errors,
    logout_everywhere,
    revoke,
    safe_next,
    session,
    sessions_of,
)
from wsgisession.errors import ConfigurationError, HTTPError, NotLoggedIn


def environment(**options: Any) -> Environment:
    """The Jinja environment of Django's Jinja2 backend (the shared templates)."""
    options.pop("autoescape", None)
    return Environment(autoescape=True, **options)


def on_own_sessions() -> bool:
    """Whether the site runs on Django's own sessions, as before the switch."""
    return bool(settings.SWITCH_STAGE == "own")


def user_name(request: HttpRequest) -> str | None:
    """The name of the logged-in user, as the site shows it; ``None``: not logged in."""
    user = request.user
    return str(user.first_name or user.username) if user.is_authenticated else None


def layout_context(request: HttpRequest) -> dict[str, Any]:
    """What the shared layout needs, from Django's auth, messages and CSRF."""
    user = request.user if request.user.is_authenticated else None
    return {
        "user": user_name(request),
        "messages": [(m.level_tag or "info", str(m)) for m in messages.get_messages(request)],
        "csrf_token": lambda: get_token(request),
        "csrf_name": "csrfmiddlewaretoken",
        "csrf_header": "X-CSRF-Token",  # settings.CSRF_HEADER_NAME
        "admin_url": "/admin/",
        "framework": "Django",
        "page_data": htmlsafe_json_dumps({"user": user.username if user else None}),
        "session_owner": "Django's own" if on_own_sessions() else "wsgisession's",
    }


def page(
    request: HttpRequest, template: str, title: str, status: int = 200, **context: Any
) -> HttpResponse:
    """*template* in the layout; ``no-store``, as every page names the user."""
    response = render(request, template, {"title": title, **context}, status=status)
    response["Cache-Control"] = "no-store"
    return response


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=100)
    email = forms.EmailField(max_length=254, label="E-mail")


class CartForm(forms.Form):
    item = forms.CharField(max_length=50)


def _errors(form: forms.Form) -> dict[str, str]:
    return field_errors(form.errors)


def _wants_json(request: HttpRequest) -> bool:
    return wants_json(request.path, request.headers.get("Accept"))


def api_refusal(refusal: HTTPError) -> JsonResponse:
    """*refusal* as the other variants' error handlers answer an API client: its JSON,
    its status and its ``WWW-Authenticate`` (whatever the client's ``Accept``)."""
    response = JsonResponse(refusal.json(), status=refusal.code)
    for name, value in refusal.get_headers():
        if name == "WWW-Authenticate":
            response[name] = value
    return response


def on_token(request: HttpRequest) -> bool:
    """Whether the request's session travels in the ``X-Auth-Token`` header (a token)."""
    return not on_own_sessions() and session.transport == "header"


def login_first(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Django's ``login_required``, answering as the other variants' guard does: a
    ``303`` to the login page with ``next``, or ``401`` JSON for an API client."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if _wants_json(request):
            return api_refusal(NotLoggedIn())
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"/login?{query}", status=303)

    return guarded


@require_GET
def home(request: HttpRequest, form: forms.Form | None = None) -> HttpResponse:
    request.session["visits"] = visits = request.session.get("visits", 0) + 1
    name = request.session.get("name", "")
    values = (
        form.data if form is not None else {"name": name, "email": request.session.get("email", "")}
    )
    return page(
        request,
        "home.html",
        f"Hello, {name or user_name(request) or 'stranger'}!",
        status=400 if form is not None else 200,
        visits=visits,
        form=values,
        errors=_errors(form) if form is not None else {},
    )


@require_POST
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST)
    if not form.is_valid():
        request.method = "GET"
        return home(request, form)
    request.session["name"] = form.cleaned_data["name"]
    request.session["email"] = form.cleaned_data["email"]
    messages.success(request, f"Nice to meet you, {form.cleaned_data['name']}.")
    return HttpResponseRedirect("/", status=303)


@require_POST
def forget(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    messages.info(request, "Forgotten. This is a new session.")
    response = HttpResponseRedirect("/", status=303)
    response.delete_cookie(SIGNED_IN_COOKIE)
    return response


def add_to_cart(request: HttpRequest, item: str) -> list[str]:
    """Add *item* to the session's cart, a change inside a value; the cart."""
    items: list[str] = request.session.setdefault("cart", [])
    items.append(item)
    if on_own_sessions():
        # Django's own sessions see assignments only; wsgisession compares content,
        # so after the switch this line can go.
        request.session.modified = True
    return items


@require_http_methods(["GET", "POST"])
def cart(request: HttpRequest) -> HttpResponse:
    form = CartForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        add_to_cart(request, form.cleaned_data["item"])
        messages.success(request, f"Added {form.cleaned_data['item']} to your cart.")
        return HttpResponseRedirect("/cart", status=303)
    return page(
        request,
        "cart.html",
        "Your cart",
        status=400 if form is not None else 200,
        items=request.session.get("cart", []),
        form=form.data if form is not None else {},
        errors=_errors(form) if form is not None else {},
    )


@require_http_methods(["GET", "POST"])
@catch_http_errors  # body()'s 400 (every field error, as JSON) rather than Django's 500
def api_cart(request: HttpRequest) -> HttpResponse:
    """GET: the cart as JSON; POST with ``{"item": ...}`` (or a form) adds to it."""
    if on_token(request) and not request.user.is_authenticated:
        # A token is a login: one logged out, revoked, expired (or never logged in).
        return api_refusal(NotLoggedIn(API_LOGIN_FIRST))
    if request.method == "GET":
        return JsonResponse({"cart": request.session.get("cart", [])})
    added = body(CartItem)
    return JsonResponse({"cart": add_to_cart(request, added.item)})


# Without the token header this view refuses the request itself (a 400 saying to send
# it), rather than Django's CSRF check with a refusal that would puzzle a curl user.
@csrf_exempt
@require_POST
@catch_http_errors
def api_login(request: HttpRequest) -> HttpResponse:
    """Check the password and log the token in with auth's ``login()``; the new token
    comes back in the ``X-Auth-Token`` header (wsgisession's middleware sets it)."""
    if not on_token(request):
        return api_refusal(TokenHeaderMissing())
    credentials = body(Credentials)
    user = authenticate(request, username=credentials.username, password=credentials.password)
    if user is None:
        return api_refusal(WrongCredentials())
    auth_login(request, user)  # a device of user.pk, as the login page's
    return JsonResponse(api_logged_in(user.get_username()))


@require_POST
def api_logout(request: HttpRequest) -> HttpResponse:
    """End the session; the token's header comes back empty."""
    auth_logout(request)
    return JsonResponse(API_LOGGED_OUT)


@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if user is not None:
            remember = "remember" in request.POST
            auth_login(request, user)
            request.session.set_expiry(None if remember else 0)
            # With wsgisession, auth's user_logged_in signal records the login as a
            # device of user.pk, the id a login carried over from Django's sessions has.
            # The profile belongs to the user: a name typed in before is not theirs.
            request.session.pop("name", None)
            request.session.pop("email", None)
            messages.success(request, f"Welcome back, {user.first_name or user.username}.")
            response = HttpResponseRedirect(safe_next(request.GET.get("next")), status=303)
            response.set_signed_cookie(
                SIGNED_IN_COOKIE,
                "1",
                salt=SIGNED_IN_COOKIE,
                max_age=SESSION_MAX_AGE if remember else None,
                httponly=True,
                samesite="Lax",
            )
            return response
        error = "Wrong user name or password."
    query = request.META.get("QUERY_STRING", "")
    return page(
        request,
        "login.html",
        "Log in",
        status=400 if error else 200,
        error=error,
        notice=LOGIN_NEEDED if request.method == "GET" and "next" in request.GET else "",
        action="/login" + (f"?{query}" if "next" in request.GET else ""),
        form={"username": request.POST.get("username", ""), "remember": "remember" in request.POST},
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    messages.info(request, "You are logged out.")
    response = HttpResponseRedirect("/", status=303)
    response.delete_cookie(SIGNED_IN_COOKIE)
    return response


@login_first
@require_http_methods(["GET", "POST"])
def devices(request: HttpRequest) -> HttpResponse:
    if on_own_sessions():  # Django's sessions: no list of a user's sessions to show
        if request.method == "POST":
            return HttpResponseRedirect("/devices", status=303)
        return page(request, "devices.html", "Your devices", unavailable=DEVICES_NOT_LISTED)
    user_id = request.user.pk
    if request.method == "POST":
        if request.POST.get("everywhere"):
            ended = logout_everywhere()
            messages.info(request, f"Logged out everywhere else ({ended} other session(s) ended).")
        elif revoke(request.POST.get("handle", ""), user_id=user_id):
            messages.success(request, "That session is logged out.")
        else:
            messages.warning(request, "That session had already ended.")
        return HttpResponseRedirect("/devices", status=303)
    try:
        listed = sessions_of(user_id)
    except ConfigurationError as exc:  # the cookie store: no server record to list
        log.info("the devices page lists nothing: %s", exc)
        return page(request, "devices.html", "Your devices", unavailable=DEVICES_UNAVAILABLE)
    panel = token_panel(request.build_absolute_uri("/"), request.user.get_username())
    return page(request, "devices.html", "Your devices", devices=device_rows(listed), token=panel)


def error_page(request: HttpRequest, code: int, message: str | None = None) -> HttpResponse:
    """The site's page for an HTTP error, in the layout; JSON for an API client."""
    if _wants_json(request):
        return JsonResponse(error_json(code, request.method or "GET"), status=code)
    if message is None:
        message = error_message(code, request.method or "GET")
    return page(
        request,
        "error.html",
        ERROR_TITLES.get(code, "Error"),
        status=code,
        code=code,
        message=message,
    )


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: the admin pages, for a user without the admin role."""
    return error_page(request, 403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404."""
    return error_page(request, 404)


def csrf_reason(reason: str) -> str:
    """Django's reason for a CSRF refusal under wsgisession's name for it: ``missing``,
    ``invalid`` (a token that does not match, or malformed), ``no_secret`` (the
    session has no CSRF secret: it ended) or ``origin``."""
    if reason == csrf.REASON_CSRF_TOKEN_MISSING:
        return "missing"
    if reason.startswith("CSRF cookie"):  # REASON_NO_CSRF_COOKIE, or a damaged secret
        return "no_secret"
    if reason.startswith("CSRF token"):  # "CSRF token from POST incorrect." and the like
        return "invalid"
    return "origin"


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the page saying why (or JSON, with Django's reason)."""
    ours = csrf_reason(reason)
    if _wants_json(request):
        return JsonResponse({"error": f"csrf_{ours}", "message": reason}, status=403)
    return error_page(request, 403, csrf_message(ours))


class CsrfViewMiddleware(csrf.CsrfViewMiddleware):
    """Django's CSRF check, for a session carried in the cookie only.

    A session carried in the ``X-Auth-Token`` header (a token) is no ambient
    credential: no browser sends that header unasked, so no other site can make it
    act for the user. It passes, as wsgisession's ``CsrfMiddleware`` lets it pass in
    the other variants; a request sending both is refused (400) before Django.
    """

    def process_view(
        self,
        request: HttpRequest,
        callback: Callable[..., HttpResponse],
        callback_args: Any,
        callback_kwargs: Any,
    ) -> HttpResponse | None:
        if on_token(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class ErrorPages:
    """Django middleware: an empty 405 (``require_http_methods``) becomes a page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 405 and not response.content:
            page_ = error_page(request, 405)
            page_["Allow"] = response["Allow"]
            return page_
        return response


class LoggedOutElsewhere:
    """Django middleware: a browser that had logged in (the signed cookie set at login)
    and whose login ended without its own logout is told it was logged out elsewhere."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ended = (
            request.method == "GET"
            and not request.path.startswith("/static/")
            and request.path != "/favicon.ico"
            and request.get_signed_cookie(SIGNED_IN_COOKIE, None, salt=SIGNED_IN_COOKIE) is not None
            and not request.user.is_authenticated
        )
        if ended:
            messages.warning(request, SIGNED_OUT_ELSEWHERE)
        response = self.get_response(request)
        if ended:
            response.delete_cookie(SIGNED_IN_COOKIE)
        return response


class DemoAdminSite(admin.AdminSite):
    """Django's admin, where a logged-in user who is not staff gets the 403 page and
    a visitor is sent to the site's login page."""

    site_header = "wsgisession demo admin"

    def has_permission(self, request: HttpRequest) -> bool:
        if request.user.is_authenticated and not request.user.is_staff:
            raise PermissionDenied("This page needs the admin role.")
        return super().has_permission(request)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.user.is_authenticated and not request.user.is_staff:
            raise PermissionDenied("This page needs the admin role.")
        next_url = request.GET.get("next", "/admin/")
        return HttpResponseRedirect("/login?" + urlencode({"next": next_url}), status=303)


admin_site = DemoAdminSite(name="admin")
admin_site.register(User, UserAdmin)
admin_site.register(Group, GroupAdmin)
