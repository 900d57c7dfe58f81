from django.apps import AppConfig
from django.db.models.signals import post_migrate


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Hosts"

    def ready(self):
        from hosts.outside import reinstall_if_needed

        post_migrate.connect(reinstall_if_needed, sender=self, dispatch_uid="hosts.outside.reinstall_if_needed")
