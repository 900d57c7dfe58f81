"""The idle poll ahead of the middleware (issue 22): GET /api/v1/agent/commands/ with a Bearer
token is the request a large fleet sends most, so AgentPollMiddleware, placed right after the
health check, answers it without the rest of the middleware (sessions, CSRF, OTP, the staff
session, the query check, axes: none of which a token poll uses) and without DRF's request
cycle (its Request, negotiation, permission and throttle classes, serializers and renderer).

Same answer by construction:
- the host check and the TLS redirect: a request whose Host ALLOWED_HOSTS refuse, or a plain
  HTTP one where SECURE_SSL_REDIRECT holds, goes down the whole stack and is refused there;
- it authenticates with the agent API's own `AgentTokenAuthentication.authenticate` (one
  statement: the host with its due commands), records the agent as seen, and answers
  AgentCommandSerializer's shape (`command_answer`), dumped with orjson;
- the headers: those the header-only middleware of MIDDLEWARE (HEADER_MIDDLEWARE: security, the
  permissions policy, CSP, X-Frame-Options) give an answer, read once by passing an empty answer
  through those very classes (again after a setting changes), and DRF's Allow;
- a refused token or a database error is answered as the DRF view answers it (problem details,
  the Bearer challenge, 503 with Retry-After).
Every request it does not take in full (another method, OPTIONS, no Authorization header or a
blank one, a query string, an Accept header that is not plainly JSON) goes down the stack to
the DRF view (AgentCommandsView), which also carries the schema entry."""

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string
from rest_framework.exceptions import AuthenticationFailed

from config.http.answers import json_answer, problem_answer
from nodes.agent.authentication import AgentTokenAuthentication, agent_seen
from nodes.models import Command

#: Accept headers the fast path takes as they are (what agents, curl and wrk send, or none);
#: anything else is negotiated by DRF (a 406 where JSON is not acceptable).
_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})
#: What DRF adds to every answer of the view (finalize_response; no Vary: it has one renderer).
_DRF_HEADERS = {"Allow": "GET, HEAD, OPTIONS"}
#: Middleware whose only effect on a poll's answer is the headers it adds; those of them that
#: MIDDLEWARE holds give the fast answer their headers.
HEADER_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)


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


class AgentPollMiddleware:
    """Answers an agent's plain poll; hands every other request on unchanged."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.authentication = AgentTokenAuthentication()
        self.path = None  # the poll's URL, resolved at the first request (the URLconf loads late)
        self.headers = {}  # request.is_secure() -> the header middleware's headers
        setting_changed.connect(self._settings_changed)

    def __call__(self, request):
        if self.path is None:
            try:
                self.path = reverse("agent-commands")
            except NoReverseMatch:  # a URLconf without the agent API
                self.path = ""
        if request.path_info != self.path or not self._takes(request):
            return self.get_response(request)
        try:
            authenticated = self.authentication.authenticate(request)
            if authenticated is None:  # a blank Authorization header: DRF's 401 (no credentials)
                return self.get_response(request)
            agent = authenticated[0]
            request.user = agent  # as DRF's Request sets it, for what reads it after the view
            agent_seen(agent.host)
        except Exception as exc:
            challenge = {"WWW-Authenticate": self.authentication.authenticate_header(request)}
            answer = problem_answer(exc, headers=challenge if isinstance(exc, AuthenticationFailed) else None)
            if answer is None:
                raise
            return self._finish(request, answer)
        return self._finish(request, json_answer(poll_answer(agent.commands), headers=_DRF_HEADERS))

    @staticmethod
    def _takes(request) -> bool:
        meta = request.META
        if not (
            request.method in ("GET", "HEAD")
            and "HTTP_AUTHORIZATION" in meta
            and not meta.get("QUERY_STRING")
            and meta.get("HTTP_ACCEPT", "") in _PLAIN_ACCEPT
        ):
            return False
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return False  # SecurityMiddleware redirects it
        try:
            request.get_host()
        except DisallowedHost:
            return False  # CommonMiddleware answers 400
        return True

    def _finish(self, request, answer: HttpResponse) -> HttpResponse:
        secure = request.is_secure()
        if secure not in self.headers:
            self.headers[secure] = self._header_middleware_headers(request)
        for name, value in self.headers[secure].items():
            answer[name] = value
        answer["Content-Length"] = str(len(answer.content))  # as CommonMiddleware sets it
        return answer

    @staticmethod
    def _header_middleware_headers(request) -> dict[str, str]:
        """What the header middleware add to an answer of this request: an empty answer passed
        through them, as the stack would pass it."""
        answer = HttpResponse(content_type="application/json")
        before = set(answer.headers)
        respond = lambda request: answer  # noqa: E731 - the innermost "view"
        for path in reversed([name for name in settings.MIDDLEWARE if name in HEADER_MIDDLEWARE]):
            respond = import_string(path)(respond)
        respond(request)
        return {name: value for name, value in answer.headers.items() if name not in before}

    def _settings_changed(self, **kwargs):
        self.path = None
        self.headers.clear()
