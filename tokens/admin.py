"""API tokens in the admin: support sees who holds which token (never a key) and can revoke it."""

from django.contrib import admin

from tokens.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "expires_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name", "prefix"]
    list_filter = ["expires_at"]
    fields = ["prefix", "name", "user", "created_at", "expires_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # keys are shown once: made with `manage.py api_token` or POST /api/v1/auth/tokens/

    def has_change_permission(self, request, obj=None):
        return False
