from django.apps import AppConfig
from django.db.models.signals import post_migrate


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Hosts"

    def ready(self):
        from config.http.metrics import register_collector
        from hosts.audit_record import publish_last_audit
        from hosts.fleet import publish_capacity
        from hosts.outside import reinstall_if_needed

        register_collector(publish_last_audit)  # the last audit's gauges, set before each /metrics scrape
        register_collector(publish_capacity)  # nodefleet_capacity from host rows, at scrape time

        post_migrate.connect(reinstall_if_needed, sender=self, dispatch_uid="hosts.outside.reinstall_if_needed")
