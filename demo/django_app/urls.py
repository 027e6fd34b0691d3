"""URL patterns of the Django demo; the admin is Django's, at /admin/."""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles.views import serve
from django.urls import path, re_path

from . import views

handler403 = "demo.django_app.views.forbidden"
handler404 = "demo.django_app.views.not_found"

urlpatterns = [
    path("", views.home),
    path("profile", views.profile),
    path("forget", views.forget),
    path("cart", views.cart),
    path("api/cart", views.api_cart),
    path("login", views.login_page),
    path("logout", views.logout_view),
    path("devices", views.devices),
    path("admin/", views.admin_site.urls),
    # The demo serves its stylesheet (and the admin's) itself: no web server in front.
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
    path("favicon.ico", serve, {"path": "favicon.ico", "insecure": True}),
]

if settings.SWITCH_STAGE != "own":
    # API tokens are sessions of wsgisession's, carried in the X-Auth-Token header.
    urlpatterns += [path("api/login", views.api_login), path("api/logout", views.api_logout)]
