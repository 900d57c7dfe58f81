"""The one error hierarchy of Nodefleet: every refusal carries a code, an HTTP status and a
detail text that the API, the admin and the commands all show as they are (pure Python)."""


class ApplicationError(Exception):
    """Base of every error a user can be shown. `extra` holds the code's own fields (§4)."""

    code = "error"
    status = 500
    title = "Error"

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type(self) -> str:
        return f"/problems/{self.code}"

    def as_problem(self) -> dict:
        """RFC 9457 problem details (the body of `application/problem+json`)."""
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class NotFound(ApplicationError):
    code, status, title = "not_found", 404, "Not found"


class InvalidInput(ApplicationError):
    """Malformed input; `errors` maps each field to its messages."""

    code, status, title = "invalid", 400, "Invalid input"

    def __init__(self, detail: str, *, errors: dict):
        super().__init__(detail, errors=errors)


class AlreadyOnImage(ApplicationError):
    code, status, title = "already_on_image", 409, "Node already runs this image"


class IncompatibleImage(ApplicationError):
    code, status, title = "incompatible_image", 422, "Image of another protocol"


class InvalidImageConfig(ApplicationError):
    code, status, title = "invalid_image_config", 422, "Image requirements are invalid"


class ResourceOverflow(ApplicationError):
    code, status, title = "resource_overflow", 422, "Resource beyond the 64-bit limit"

    def __init__(self, detail: str, *, resource: str):
        super().__init__(detail, resource=resource)


class InsufficientCapacity(ApplicationError):
    code, status, title = "insufficient_capacity", 409, "Not enough capacity on the host"

    def __init__(self, detail: str, *, host: str, shortfalls: list[dict]):
        super().__init__(detail, host=host, shortfalls=shortfalls)


class HostUnavailable(ApplicationError):
    """A create on a host that takes no new node (`draining`, §11)."""

    code, status, title = "host_unavailable", 409, "The host takes no new nodes"

    def __init__(self, detail: str, *, host: str, scheduling: str):
        super().__init__(detail, host=host, scheduling=scheduling)


class NoHostAvailable(ApplicationError):
    """A placement that found no eligible host with room (§11): what it looked at and why not."""

    code, status, title = "no_host_available", 409, "No host can take the node"

    def __init__(self, detail: str, *, hosts_considered: int, excluded: dict[str, int]):
        super().__init__(detail, hosts_considered=hosts_considered, excluded=excluded)


class CounterDrift(ApplicationError):
    code, status, title = "counter_drift", 409, "Host counters disagree with its nodes"

    def __init__(self, detail: str, *, host: str, resource: str):
        super().__init__(detail, host=host, resource=resource)


class NodeBusy(ApplicationError):
    """The node's host is working on a command for it (or its creation is still open, §9)."""

    code, status, title = "node_busy", 409, "The node's host is working on it"

    def __init__(self, detail: str, *, command_id: int, command_status: str):
        super().__init__(detail, command_id=command_id, command_status=command_status)


class CommandClosed(ApplicationError):
    """An agent reports on a command already closed with another outcome, superseded or cancelled."""

    code, status, title = "command_closed", 409, "Command already closed"

    def __init__(self, detail: str, *, command_status: str):
        super().__init__(detail, command_status=command_status)


class InvalidState(ApplicationError):
    """An action that the current state of a command, node or rollout does not allow."""

    code, status, title = "invalid_state", 409, "Not allowed in the current state"

    def __init__(self, detail: str, *, state: str):
        super().__init__(detail, state=state)


class Busy(ApplicationError):
    """The database could not serve the change now (lock timeout, deadlock, lost connection)."""

    code, status, title = "busy", 503, "Busy, try again"

    def __init__(self, detail: str, *, retry_after: int = 1):
        super().__init__(detail)
        self.retry_after = retry_after


class NotAuthenticated(ApplicationError):
    code, status, title = "not_authenticated", 401, "Not authenticated"


class PermissionDenied(ApplicationError):
    code, status, title = "permission_denied", 403, "Permission denied"
