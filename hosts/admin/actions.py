"""The hosts admin's writes of the capacity model (§11), all through hosts.services under the
host's row lock: the add/change form (host_create / host_update, a WARNING naming whatever the
host is now over) and the actions "Drain", "Set automatic", "Set manual" (one host_update per
host, a message per outcome)."""

from django.contrib import admin, messages

from config.errors import ApplicationError
from hosts.admin.capacity import over_allocated_text, values_of
from hosts.models import Host, Scheduling, Source
from hosts.services import host_create, host_update

#: Host names one message lists before "and N more".
NAMES_IN_A_MESSAGE = 10

#: scheduling -> (what the message says was done, what it says of hosts already so)
_SAID = {
    Scheduling.DRAINING: ("Draining now (no new node goes on them; their nodes stay)", "Already draining"),
    Scheduling.AUTOMATIC: ("Automatic now (placement may choose them)", "Already automatic"),
    Scheduling.MANUAL: ("Manual now (only nodes that name them go on them)", "Already manual"),
}


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_IN_A_MESSAGE])
    more = len(names) - NAMES_IN_A_MESSAGE
    return f"{shown} and {more} more" if more > 0 else shown


class HostWrites(admin.ModelAdmin):
    """Mixed into HostAdmin (which supplies `_selection`, the bounded list of selected ids)."""

    # The form: through the locked services, never Model.save -----------------------------------

    def save_model(self, request, obj, form, change):
        values, actor = values_of(form, change=change), getattr(request, "user", None)
        if change:
            write = host_update(host_id=obj.pk, values=values, actor=actor, source=Source.ADMIN)
        else:
            write = host_create(values=values, actor=actor, source=Source.ADMIN)
        for field in Host._meta.concrete_fields:  # the admin's messages and redirect read obj
            setattr(obj, field.attname, getattr(write.host, field.attname))
        obj._state.adding = False
        if write.over_allocated:
            self.message_user(request, over_allocated_text(write.host, write.over_allocated), messages.WARNING)

    # Actions ----------------------------------------------------------------------------------

    @admin.action(permissions=["change"], description="Drain")
    def drain(self, request, queryset):
        self._set_scheduling(request, queryset, Scheduling.DRAINING)

    @admin.action(permissions=["change"], description="Set automatic")
    def set_automatic(self, request, queryset):
        self._set_scheduling(request, queryset, Scheduling.AUTOMATIC)

    @admin.action(permissions=["change"], description="Set manual")
    def set_manual(self, request, queryset):
        self._set_scheduling(request, queryset, Scheduling.MANUAL)

    def _set_scheduling(self, request, queryset, scheduling: str) -> None:
        """One host_update per host (its own transaction, the host's row lock), in name order;
        then one message per outcome: changed, already so, refused."""
        host_ids = self._selection(request, queryset)
        if host_ids is None:
            return
        changed, unchanged, refused = [], [], []
        for host_id, name in Host.objects.filter(pk__in=host_ids).order_by("name").values_list("pk", "name"):
            try:
                write = host_update(
                    host_id=host_id, values={"scheduling": scheduling}, actor=request.user, source=Source.ADMIN
                )
            except ApplicationError as error:
                refused.append(f"{name}: {error.detail}")
                continue
            if write.changed:
                changed.append(write.host.name)
                self.log_change(request, write.host, f"Scheduling set to {scheduling}.")
            else:
                unchanged.append(write.host.name)
        done, already = _SAID[scheduling]
        if changed:
            self.message_user(request, f"{done}: {_names(changed)}.", messages.SUCCESS)
        if unchanged:
            self.message_user(request, f"{already}: {_names(unchanged)}.", messages.INFO)
        if refused:
            self.message_user(request, f"Not changed: {'; '.join(refused)}", messages.ERROR)
        if not (changed or unchanged or refused):
            self.message_user(request, "The selected hosts no longer exist.", messages.ERROR)
