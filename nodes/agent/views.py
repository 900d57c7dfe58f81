"""The agent API (/api/v1/agent/, §9): a host's agent polls its open commands, acknowledges
one and reports how it ended. Thin views: parse, call one service or selector, render."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from config.http.openapi import problems
from nodes.agent.authentication import AgentTokenAuthentication, IsHostAgent, agent_seen
from nodes.agent.lifecycle import command_ack, command_result
from nodes.agent.poll import poll_answer
from nodes.agent.serializers import (
    AgentCommandListSerializer,
    CommandResultSerializer,
    CommandSerializer,
    EmptyBodySerializer,
)


class AgentView(APIView):
    """Agent tokens only; no throttling (an agent polls by design) and no user permission."""

    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsHostAgent]
    throttle_classes = []

    @property
    def host(self):
        return self.request.user.host

    def _parse(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data if self.request.data is not None else {})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class AgentCommandsView(AgentView):
    """Serves what AgentPollMiddleware (nodes.agent.poll) hands on, and documents the endpoint."""

    @extend_schema(
        summary="The host's open commands (agent)",
        description="`pending` or `acked` commands of the token's host whose `not_before` has passed, "
        "oldest first, at most 100. Records that the agent was seen.",
        responses={200: AgentCommandListSerializer, **problems(401, 403, 503)},
        tags=["agent"],
    )
    def get(self, request):
        agent_seen(self.host)
        return Response(poll_answer(request.user.commands))


class AgentCommandAckView(AgentView):
    @extend_schema(
        summary="Acknowledge a command (agent)",
        description="`pending` → `acked`. Again: 200, no change. A closed command: 409 `command_closed`.",
        request=EmptyBodySerializer,
        responses={200: CommandSerializer, **problems(400, 401, 403, 404, 409, 413, 415, 503)},
        tags=["agent"],
    )
    def post(self, request, pk: int):
        self._parse(EmptyBodySerializer)
        change = command_ack(command_id=pk, host_id=self.host.pk)
        return Response(CommandSerializer(change.command).data)


class AgentCommandResultView(AgentView):
    @extend_schema(
        summary="Report how a command ended (agent)",
        description="Closes the command with its outcome (§9), or returns it to `pending` with "
        "`retry_later`. The same outcome again: 200, no change; another outcome on a closed "
        "command: 409 `command_closed`.",
        request=CommandResultSerializer,
        responses={200: CommandSerializer, **problems(400, 401, 403, 404, 409, 413, 415, 503)},
        tags=["agent"],
    )
    def post(self, request, pk: int):
        data = self._parse(CommandResultSerializer)
        change = command_result(command_id=pk, host_id=self.host.pk, **data)
        return Response(CommandSerializer(change.command).data)
