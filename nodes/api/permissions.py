"""Who may call what: reads need the model's view (or change) permission, as the admin asks;
each write its model permission; `force` the host permission to place past capacity."""

from rest_framework.permissions import BasePermission

from config.errors import PermissionDenied

OVERCOMMIT = "hosts.overcommit_host"


def model_permission(perm: str) -> type[BasePermission]:
    """A DRF permission class granting the request to users holding `perm` (anonymous: 401)."""

    class HasModelPermission(BasePermission):
        message = f"You need the {perm} permission."

        def has_permission(self, request, view):
            return request.user.has_perm(perm)

    HasModelPermission.__name__ = f"Has_{perm.replace('.', '_')}"
    return HasModelPermission


class ModelReadPermission(BasePermission):
    """Reads of the view's model need `<app>.view_<model>` or `<app>.change_<model>`, as the
    admin's has_view_permission does (anonymous: 401, by IsAuthenticated before it)."""

    def has_permission(self, request, view):
        opts = view.get_queryset().model._meta
        view_perm, change_perm = (f"{opts.app_label}.{action}_{opts.model_name}" for action in ("view", "change"))
        if request.user.has_perm(view_perm) or request.user.has_perm(change_perm):
            return True
        self.message = f"You need the {view_perm} permission."
        return False


def read_permission(label: str) -> type[BasePermission]:
    """Reads of another model (`app.model`): its view permission, or its change permission, as
    ModelReadPermission grants them."""
    app_label, model_name = label.split(".")
    view_perm, change_perm = f"{app_label}.view_{model_name}", f"{app_label}.change_{model_name}"

    class CanRead(BasePermission):
        message = f"You need the {view_perm} permission."

        def has_permission(self, request, view):
            return request.user.has_perm(view_perm) or request.user.has_perm(change_perm)

    CanRead.__name__ = f"CanRead_{app_label}_{model_name}"
    return CanRead


def check_force(user, *, force: bool) -> None:
    """`force: true` needs hosts.overcommit_host, whether or not the change would fit."""
    if force and not user.has_perm(OVERCOMMIT):
        raise PermissionDenied(f"force=true places past a host's capacity and needs the {OVERCOMMIT} permission.")
