"""Admin building blocks shared by the hosts and nodes admins: a paginator that does not count
big tables on every page load, utilisation bars, a text-box list filter, read-only registrations."""

import logging
import uuid
from functools import cached_property

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import InterfaceError, OperationalError, connections
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from config.db import BUSY_DETAIL
from config.errors import ApplicationError
from config.text import printable_error
from config.units import RESOURCE_LABELS, RESOURCES
from hosts.models import COUNTER_OF_RESOURCE

logger = logging.getLogger("hosts.admin_helpers")  # its name before hosts/admin/

#: What ErrorsAsMessages turns into a message: refusals, and a database that could not serve now.
REFUSALS = (ApplicationError, ValidationError, OperationalError, InterfaceError)

#: Below this many rows (by the statistics) an exact COUNT(*) is cheap enough to run
#: (setting ADMIN_EXACT_COUNT_BELOW overrides it).
EXACT_COUNT_BELOW = 20_000


class EstimatedCountPaginator(Paginator):
    """For an unfiltered list of a big PostgreSQL table, takes the row count from the planner's
    statistics (pg_class.reltuples) instead of COUNT(*), which scans the whole table. Filtered
    lists, small tables and other databases get the exact count. `estimated` says which."""

    estimated = False

    @cached_property
    def count(self):
        estimate = self._estimate()
        if estimate is not None and estimate >= getattr(settings, "ADMIN_EXACT_COUNT_BELOW", EXACT_COUNT_BELOW):
            self.estimated = True
            return estimate
        return super().count

    def _estimate(self) -> int | None:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or queryset.query.where or queryset.query.distinct:
            return None
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        # -1: never vacuumed or analyzed, so PostgreSQL does not know yet.
        return row[0] if row and row[0] >= 0 else None


class PageFirstPaginator(EstimatedCountPaginator):
    """Finds the primary keys of the page first, in a subquery of the same statement, so
    per-row annotations (correlated subqueries) are computed for the rows shown only, not for
    every row an OFFSET skips on the way to a deep page."""

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        keys = self.object_list.values("pk")[bottom:top]
        return self._get_page(self.object_list.filter(pk__in=keys), number, self)


class PagedChangeList(ChangeList):
    """Fetches a result that fits on one page through the paginator too (Django takes the whole
    queryset then), so PageFirstPaginator's bounded statement serves every list."""

    def get_results(self, request):
        super().get_results(request)
        if not self.multi_page and not self.show_all:
            self.result_list = self.paginator.page(1).object_list


class ErrorsAsMessages(admin.ModelAdmin):
    """Every refusal shows as the admin's error message with its detail, never as a 500: a
    service's ApplicationError (`busy`, an overflow, a drift), a model's ValidationError raised
    on save (a race past the form's check) and a lock wait that timed out, in actions, the
    add/change form and the delete page alike. The view's transaction is rolled back first."""

    def _refused(self, request, error: Exception, redirect_to: str):
        if isinstance(error, ApplicationError):
            detail = error.detail
        elif isinstance(error, ValidationError):
            detail = " ".join(error.messages)
        else:
            logger.warning("admin: database busy: %s", error)
            detail = BUSY_DETAIL
        self.message_user(request, detail, messages.ERROR)
        return HttpResponseRedirect(redirect_to)

    def response_action(self, request, queryset):
        try:
            return super().response_action(request, queryset)
        except REFUSALS as error:
            return self._refused(request, error, request.get_full_path())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except REFUSALS as error:
            return self._refused(request, error, request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except REFUSALS as error:
            opts = self.opts
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            return self._refused(request, error, change)


class LargeTableAdmin(ErrorsAsMessages):
    """A list that stays fast however many rows: no full count beside the filtered one, no
    facet counts, and the planner's estimate when nothing is filtered."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100

    class Media:
        css = {"all": ["hosts/admin.css"]}

    #: A search term that is a UUID finds the rows with this field equal to it (an indexed
    #: lookup) instead of a text search; None: no such search.
    id_search_field: str | None = None

    def get_search_results(self, request, queryset, search_term):
        pk = as_uuid(search_term) if self.id_search_field else None
        if pk:
            return queryset.filter(**{self.id_search_field: pk}), False
        return super().get_search_results(request, queryset, search_term)


class ReadOnlyAdmin(LargeTableAdmin):
    """History written only by the services: listed and searched, never added, edited or deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PrintableFieldsForm(forms.ModelForm):
    """A model form whose `printable_fields` refuse control and invisible characters: a name
    reaches terminals and log lines, where a newline or an escape sequence would forge output."""

    printable_fields: tuple[str, ...] = ()

    def clean(self):
        cleaned = super().clean()
        for name in self.printable_fields:
            value = cleaned.get(name)
            if isinstance(value, str) and (error := printable_error(value)):
                self.add_error(name, error)
        return cleaned


def as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


class TextInputFilter(admin.SimpleListFilter):
    """A list filter typed into a box rather than picked from a list of every choice (a list of
    10,000 hosts is no filter). Subclasses set title, parameter_name and queryset()."""

    template = "admin/text_input_filter.html"

    def lookups(self, request, model_admin):
        return ()

    def has_output(self):
        return True

    def choices(self, changelist):
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "other_params": [(key, value) for key, value in changelist.params.items() if key != self.parameter_name],
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


COUNTER_LABELS = {"node_count": "nodes", **{COUNTER_OF_RESOURCE[name]: RESOURCE_LABELS[name] for name in RESOURCES}}


def counter_label(counter: str) -> str:
    """What a person calls a host counter."""
    return COUNTER_LABELS[counter]


def usage_bar(used: int, capacity: int, text: str, physical: str = ""):
    """`text` (e.g. "12 / 32 cores") over a small bar filled to used/capacity, where capacity is
    the host's allocatable (§11; `physical`, the machine's size, goes in the tooltip); amber
    from 85 %, red past allocatable."""
    percent = used * 100 / capacity if capacity else (100.0 if used else 0.0)
    level = "over" if used > capacity else "high" if percent >= 85 else "ok"
    return format_html(
        '<div class="nf-usage nf-usage-{}" title="{}% of allocatable used{}">'
        '<span class="nf-usage-text">{}</span>'
        '<span class="nf-bar"><span class="nf-fill" style="width: {}%"></span></span></div>',
        level,
        f"{percent:.0f}",
        f"; physical size {physical}" if physical else "",
        text,
        f"{min(percent, 100):.1f}",
    )


def refresh_seconds() -> int:
    """How often a page with work in flight refreshes itself (ADMIN_REFRESH_SECONDS): the page's
    context gets `nf_refresh` and admin/base_site.html loads nodefleet/refresh.js; without work
    in flight neither is there."""
    return settings.ADMIN_REFRESH_SECONDS


def refresh_while(response, in_flight):
    """A changelist's response that refreshes while a row of its page is in flight (`in_flight(row)`),
    judged from the rows the page already read: no query more."""
    changelist = (getattr(response, "context_data", None) or {}).get("cl")
    if changelist is not None and any(in_flight(row) for row in changelist.result_list):
        response.context_data["nf_refresh"] = refresh_seconds()
    return response
