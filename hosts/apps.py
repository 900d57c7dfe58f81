from django.apps import AppConfig
from django.db.models.signals import post_migrate


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Hosts"

    def ready(self):
        from hosts.outside import reinstall_for_role

        post_migrate.connect(reinstall_for_role, sender=self, dispatch_uid="hosts.outside.reinstall_for_role")
