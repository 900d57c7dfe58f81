"""The idle poll outside DRF (issue 22): GET /api/v1/agent/commands/ with a Bearer token is the
request a large fleet sends most, so it is served by a plain Django view, without DRF's request
cycle (its Request, negotiation, permission and throttle classes, serializers and renderer).

Same semantics by construction: it authenticates with the agent API's own
`AgentTokenAuthentication.authenticate` (one statement: the host with its due commands), records
the agent as seen, and answers AgentCommandSerializer's shape (`command_answer`), dumped with
orjson. A refused token or a database error is answered as the DRF view answers it (problem
details, the Bearer challenge, 503 with Retry-After). Every request it does not take in full —
another method, OPTIONS, no Authorization header, a query string, an Accept header that is not
plainly JSON — goes to the DRF view (AgentCommandsView), which also carries the schema entry:
the plain view hands drf-spectacular that class (`cls`, `initkwargs`)."""

from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import AuthenticationFailed

from config.http.answers import json_answer, problem_answer
from nodes.agent.authentication import AgentTokenAuthentication, agent_seen
from nodes.models import Command

#: Accept headers the fast path takes as they are (what agents, curl and wrk send, or none);
#: anything else is negotiated by DRF (a 406 where JSON is not acceptable).
_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})
#: What DRF adds to every answer of the view (finalize_response), kept identical.
_DRF_HEADERS = {"Allow": "GET, HEAD, OPTIONS", "Vary": "Accept"}


def command_answer(command: Command) -> dict:
    """AgentCommandSerializer's shape: an open command as the agent polls it."""
    return {
        "id": command.id,
        "kind": str(command.kind),
        "node_id": command.node_id,
        "payload": command.payload,
        "status": str(command.status),
        "attempts": command.attempts,
        "created_at": command.created_at,
    }


def poll_answer(commands: list[Command]) -> dict:
    """AgentCommandListSerializer's shape."""
    return {"results": [command_answer(command) for command in commands]}


def _takes(request) -> bool:
    meta = request.META
    return (
        request.method in ("GET", "HEAD")
        and "HTTP_AUTHORIZATION" in meta
        and not meta.get("QUERY_STRING")
        and meta.get("HTTP_ACCEPT", "") in _PLAIN_ACCEPT
    )


def plain_poll(drf_view):
    """The poll's URL callback: the plain view in front of `drf_view` (AgentCommandsView.as_view())."""
    authentication = AgentTokenAuthentication()

    @csrf_exempt
    def poll(request):
        if not _takes(request):
            return drf_view(request)
        try:
            authenticated = authentication.authenticate(request)
            if authenticated is None:  # a blank Authorization header: DRF's 401 (no credentials)
                return drf_view(request)
            agent = authenticated[0]
            request.user = agent  # as DRF's Request sets it, for what reads it after the view
            agent_seen(agent.host)
        except Exception as exc:
            headers = {"WWW-Authenticate": authentication.authenticate_header(request)}
            answer = problem_answer(exc, headers=headers if isinstance(exc, AuthenticationFailed) else None)
            if answer is None:
                raise
            return answer
        return json_answer(poll_answer(agent.commands), headers=_DRF_HEADERS)

    poll.cls = drf_view.cls  # drf-spectacular documents the DRF view (EndpointEnumerator)
    poll.initkwargs = drf_view.initkwargs
    return poll
