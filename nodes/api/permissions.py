"""Who may call what: reads need a signed-in user, each write its model permission, and
`force` the host permission to place past capacity."""

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


def check_force(user, *, force: bool) -> None:
    """`force: true` needs hosts.overcommit_host, whether or not the change would fit."""
    if force and not user.has_perm(OVERCOMMIT):
        raise PermissionDenied(f"force=true places past a host's capacity and needs the {OVERCOMMIT} permission.")
