from django.apps import AppConfig


class ThrottlesConfig(AppConfig):
    name = "config.throttles"
    label = "throttles"
    verbose_name = "Throttles"
