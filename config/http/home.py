"""The site's root: `/` is a one-page index (the admin, the API docs, the health check) instead of
a 404, and `/favicon.ico`, which browsers ask for on their own, leads to the favicon."""

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
def home(request):
    return render(request, "home.html")


@require_safe
def favicon(request):
    # Temporary (302): the static file's hashed name changes with its content.
    return HttpResponseRedirect(static("nodefleet/favicon.svg"))
