"""The admin app with Nodefleet's admin site (config.staff.admin_site) as `admin.site`, so every
`@admin.register` of the apps (and of django-axes and django-otp) lands on it."""

from django.contrib.admin.apps import AdminConfig


class NodefleetAdminConfig(AdminConfig):
    default_site = "config.staff.admin_site.NodefleetAdminSite"

    def ready(self):
        super().ready()
        from config.staff import logins, sessions  # noqa: F401  (connect their signal receivers)
