"""/api/v1/agent/ routes (§9)."""

from django.urls import path

from nodes.agent.views import AgentCommandAckView, AgentCommandResultView, AgentCommandsView

urlpatterns = [
    path("commands/", AgentCommandsView.as_view(), name="agent-commands"),
    path("commands/<bigint:pk>/ack/", AgentCommandAckView.as_view(), name="agent-command-ack"),
    path("commands/<bigint:pk>/result/", AgentCommandResultView.as_view(), name="agent-command-result"),
]
