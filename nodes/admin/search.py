"""The node list's search in one pass (issue 22): the admin counts a search's matches (COUNT(*))
and then reads the page, so the trigram match over a million names ran twice per page. Here the
first page is read first, with one row more than it shows: when it is not full, its rows are the
count and the page, and the COUNT(*) is never sent; when it is, the count runs as before and the
rows read serve the page. Pages past the first, and unfiltered lists, are read as before."""

from functools import cached_property

from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.db.models import QuerySet

from hosts.admin.helpers import EstimatedCountPaginator


class FirstPageCountPaginator(EstimatedCountPaginator):
    #: Set by CountFromFirstPage: the request asks for the first page (no `?p=`, or `?p=1`).
    first_page_requested = False
    _first_rows: list | None = None

    @cached_property
    def count(self):
        queryset = self.object_list
        if self.first_page_requested and isinstance(queryset, QuerySet) and queryset.query.where:  # filtered
            limit = self.per_page + self.orphans
            rows = list(queryset[: limit + 1])
            self._first_rows = rows[: self.per_page] if len(rows) > limit else rows
            if len(rows) <= limit:
                return len(rows)
        return super().count

    def page(self, number):
        if self._first_rows is not None and self.validate_number(number) == 1:
            return self._get_page(self._first_rows, 1, self)
        return super().page(number)


class FirstPageChangeList(ChangeList):
    """A list that fits on one page is shown from the rows its count read (Django's ChangeList
    would read it again, unsliced)."""

    def get_results(self, request):
        super().get_results(request)
        rows = self.paginator._first_rows
        if rows is not None and not self.multi_page and not self.model_admin.list_editable:
            self.result_list = rows


class CountFromFirstPage:
    """ModelAdmin mixin: the list's paginator is FirstPageCountPaginator, told which page is asked for."""

    paginator = FirstPageCountPaginator

    def get_changelist(self, request, **kwargs):
        return FirstPageChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        paginator.first_page_requested = request.GET.get(PAGE_VAR, "1") == "1"
        return paginator
