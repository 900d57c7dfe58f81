"""The throttles' counts (config.throttles.rates)."""

from django.db import models


class RateWindow(models.Model):
    """A throttle's count in its current fixed window (config.throttles.rates): failed authentications per
    client address, API writes per user. Counted by one atomic upsert, so every worker of every
    app server on this database shares the count. A row whose window ended is reused (its count
    starts again at 1) or pruned."""

    key = models.CharField(primary_key=True, max_length=255, help_text="Scope and who: e.g. auth-failures:203.0.113.7.")
    window_end = models.BigIntegerField(help_text="When the window ends, in Unix seconds.")
    count = models.PositiveIntegerField()

    class Meta:
        verbose_name = "throttle count"
        indexes = [models.Index(fields=["window_end"], name="ratewindow_window_end")]

    def __str__(self):
        return f"{self.key}: {self.count}"
