from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "API tokens"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from tokens import openapi  # noqa: F401 (registers the schema extension of the auth class)
        from tokens.services import revoke_on_password_change_or_deactivation

        post_save.connect(
            revoke_on_password_change_or_deactivation,
            sender=get_user_model(),
            dispatch_uid="tokens.revoke_on_password_change_or_deactivation",
        )
