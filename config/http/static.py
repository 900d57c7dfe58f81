"""Static files in production: whitenoise's compressed, hashed (manifest) storage, which works
only after `manage.py collectstatic`. Started without it (gunicorn run directly), the app serves
the files unhashed from the apps instead of answering 500 on the admin and the API docs, and
says so at start: run `collectstatic` (as `make serve` does) for cacheable, compressed files."""

import logging

from django.contrib.staticfiles.storage import staticfiles_storage
from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger("config.static")  # its name before config/http/

NOT_COLLECTED = (
    "static files are not collected (no %s in STATIC_ROOT %s): serving them unhashed from the apps. "
    "Run `manage.py collectstatic` before starting the server (`make serve` does)."
)


class StaticStorage(CompressedManifestStaticFilesStorage):
    """The manifest storage, or, while nothing is collected, plain names (whitenoise then finds
    the files in the apps: settings.WHITENOISE_USE_FINDERS)."""

    @property
    def collected(self) -> bool:
        return bool(self.manifest_hash)  # set by a manifest read at start or written by collectstatic

    def stored_name(self, name):
        if not self.collected:
            return name
        return super().stored_name(name)


def warn_if_static_not_collected() -> None:
    """At start: one WARNING line when the production storage has no manifest to serve from."""
    if not getattr(staticfiles_storage, "collected", True):
        logger.warning(NOT_COLLECTED, staticfiles_storage.manifest_name, staticfiles_storage.location)
